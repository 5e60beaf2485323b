"""The command runner: output, exit codes, and that timeouts and cancellation stop the whole process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from testing_worker.runner import CommandNotFound, run_command

pytestmark = pytest.mark.anyio

# A main process that starts a grandchild, records both pids, and hangs.
FAMILY = """
import os, signal, subprocess, sys, time
ignore = sys.argv[2] == "ignore-term"
if ignore:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time\\n"
if ignore:
    code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
code += "time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", code])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("family started", flush=True)
time.sleep(600)
"""


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie left (nothing runs; its parent may not be reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def wait_for(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.02)


def read_pids(pid_file: Path) -> list[int]:
    return [int(p) for p in pid_file.read_text().split()]


async def test_output_and_exit_code(tmp_path: Path) -> None:
    seen: list[str] = []
    script = "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nsys.stdout.write('no newline')\nsys.exit(3)"
    result = await run_command([sys.executable, "-c", script], tmp_path, timeout=30, on_line=seen.append)
    assert result.returncode == 3
    assert not result.timed_out
    assert result.tail == ("one", "two", "no newline")
    assert seen == ["one", "two", "no newline"]
    assert result.line_count == 3
    assert result.argv[0] == sys.executable


async def test_runs_in_cwd_with_env(tmp_path: Path) -> None:
    script = "import os; print(os.getcwd()); print(os.environ['ONLY_HERE'])"
    result = await run_command(
        [sys.executable, "-c", script],
        tmp_path,
        timeout=30,
        env={"ONLY_HERE": "yes", "PATH": "/usr/bin:/bin"},
    )
    assert result.tail == (str(tmp_path), "yes")


async def test_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    result = await run_command(
        [sys.executable, "-c", "for i in range(5000): print(i)"], tmp_path, timeout=30, tail_lines=10
    )
    assert result.line_count == 5000
    assert result.tail == tuple(str(i) for i in range(4990, 5000))
    assert result.tail_text(2) == "4998\n4999"


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = await run_command(
        [sys.executable, "-c", FAMILY, str(pid_file), "polite"], tmp_path, timeout=1.5, kill_grace=5
    )
    assert result.timed_out
    assert result.returncode == -signal.SIGTERM
    assert result.tail == ("family started",)
    assert time.monotonic() - started < 1.5 + 5
    main, grandchild = read_pids(pid_file)
    await wait_for(lambda: process_gone(main) and process_gone(grandchild), what="main and grandchild gone")


async def test_sigkill_after_the_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = await run_command(
        [sys.executable, "-c", FAMILY, str(pid_file), "ignore-term"], tmp_path, timeout=1.5, kill_grace=0.5
    )
    assert result.timed_out
    assert result.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 1.5 + 0.5 + 5
    main, grandchild = read_pids(pid_file)
    await wait_for(lambda: process_gone(main) and process_gone(grandchild), what="main and grandchild gone")


async def test_cancellation_kills_the_group_and_reraises(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    run = asyncio.create_task(
        run_command(
            [sys.executable, "-c", FAMILY, str(pid_file), "polite"], tmp_path, timeout=300, kill_grace=5
        )
    )
    await wait_for(pid_file.exists, what="the family to start")
    main, grandchild = read_pids(pid_file)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await wait_for(lambda: process_gone(main) and process_gone(grandchild), what="main and grandchild gone")


async def test_grandchild_holding_the_pipe_does_not_hang_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('main done', flush=True)\n"
    )
    started = time.monotonic()
    result = await run_command([sys.executable, "-c", script], tmp_path, timeout=120, kill_grace=1)
    assert result.returncode == 0
    assert not result.timed_out
    assert result.tail == ("main done",)
    assert time.monotonic() - started < 30  # not the 600 s the grandchild would hold stdout
    grandchild = int(pid_file.read_text())
    await wait_for(lambda: process_gone(grandchild), what="the leftover grandchild gone")


async def test_missing_program(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFound, match="cannot run 'no-such-program-here'"):
        await run_command(["no-such-program-here", "--version"], tmp_path, timeout=5)


# A main process that starts `setsid sleep 300` (it leaves the process group), records its pid, then ends or hangs.
ESCAPER = """
import subprocess, sys, time
child = subprocess.Popen(["setsid", "sleep", "300"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))
import os
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("escaper started", flush=True)
if sys.argv[2] == "hang":
    time.sleep(600)
"""


@pytest.mark.parametrize("how", ["exit", "hang"])
async def test_a_setsid_grandchild_does_not_survive_the_run(tmp_path: Path, how: str) -> None:
    pid_file = tmp_path / "pid"
    try:
        result = await run_command(
            [sys.executable, "-c", ESCAPER, str(pid_file), how],
            tmp_path,
            timeout=3 if how == "hang" else 60,
            kill_grace=2,
        )
        assert result.timed_out == (how == "hang")
        assert result.tail == ("escaper started",)
        grandchild = int(pid_file.read_text())
        await wait_for(lambda: process_gone(grandchild), what="the setsid grandchild gone")
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


async def test_long_lines_are_cut_and_a_line_without_end_cannot_grow_memory(tmp_path: Path) -> None:
    script = "import sys\nprint('E' * 20000)\nsys.stdout.write('x' * 50_000_000)\nsys.stdout.flush()"
    seen: list[str] = []
    result = await run_command(
        [sys.executable, "-c", script], tmp_path, timeout=120, on_line=seen.append, line_limit=100
    )
    assert result.returncode == 0
    first, last = result.tail
    assert len(first) == len(last) == 100
    assert first == "E" * 75 + "… [cut 19,925 characters]"
    kept = last.split("…")[0]
    assert kept == "x" * len(kept)
    assert last == f"{kept}… [cut {50_000_000 - len(kept):,} characters]"
    assert seen == list(result.tail)
    assert len(result.tail_text(2, limit=150)) == 150
