"""`python -m bench.demo_local`: what `make demo PROJECT_DIR=...` costs while it waits, and how soon
it starts again after Ctrl-C (issue 25's two figures).

    python -m bench.demo_local [--window 30] [--restart-limit 120] [--repo CHECKOUT]

One run on a small project of its own (a package, one passing test, a fleet.yaml with a docs
task and a test task) in a temporary folder, with `scripts/run_demo.py` of CHECKOUT (default
this one) serving on a free port:

1. idle: once both tasks are done, after a settling pause, CPU (% of one core, from
   /proc/<pid>/stat) of the demo script, the stub and each worker over `--window` seconds;
2. restart: a dashboard tab is opened (the page on a keep-alive connection the browser keeps,
   which the stub closes after its header timeout, leaving TIME-WAIT on its port, and the
   page's event stream), then Ctrl-C (SIGINT to the run's process group, as a terminal sends
   it), then the same command again, again and again until one gets past the port check ("stub up at"),
   the seconds between the first run's exit and that start, and how many were refused.

Prints the figures as one JSON object on stdout (progress on stderr). Figures taken while
other work shares the machine are busy-machine figures: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import REPO_ROOT, CpuMeter, MachineMeter, log
from pm_agent_stub.testing import free_port

PACKAGE = (
    '"""A tiny package."""\n\n\ndef total(xs: list[int]) -> int:\n    """The sum."""\n    return sum(xs)\n'
)
TEST = "from tiny import total\n\n\ndef test_total() -> None:\n    assert total([2, 3]) == 5\n"


def make_project(home: Path) -> Path:
    root = home / "tiny"
    (root / "tiny").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "tiny" / "__init__.py").write_text(PACKAGE)
    (root / "tests" / "test_tiny.py").write_text(TEST)
    (root / "fleet.yaml").write_text(
        "project: tiny\ntasks:\n"
        "  - {id: api-docs, name: Docs, required_skills: [documentation], payload: {path: tiny/tiny}}\n"
        "  - {id: tests, name: Tests, required_skills: [testing], payload: {path: tiny, "
        'command: "python -m pytest -q tests", env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}}}\n'
    )
    return root


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def start(repo: Path, project: Path, port: int, log_file: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_"))}
    env.update(PM_AGENT_PORT=str(port), LOG_FORMAT="json")
    with log_file.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(repo / "scripts" / "run_demo.py"), "--project-dir", str(project), "--fresh"],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job has
        )


def wait_text(log_file: Path, text: str, since: int, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    """Whether `text` appears in the log after byte `since` within `timeout` (or before `proc` exits)."""
    wanted = text.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wanted in log_file.read_bytes()[since:]:
            return True
        if proc.poll() is not None:
            return wanted in log_file.read_bytes()[since:]
        time.sleep(0.05)
    return False


class DashboardTab(threading.Thread):
    """A browser tab on the dashboard: the page fetched on a keep-alive connection, which then sits
    idle (browsers keep them for minutes) until the stub closes it, plus the page's event stream."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.events = 0

    def run(self) -> None:
        page = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        stream = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            page.request("GET", "/")
            page.getresponse().read()
            stream.request("GET", "/dashboard/api/stream")
            answer = stream.getresponse()
            while line := answer.readline():
                self.events += line.startswith(b"event: board")
        except OSError:
            pass
        finally:
            page.close()
            stream.close()


def interrupt(proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """Ctrl-C to the run's process group; the time it took to exit."""
    began = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=timeout)
    return time.monotonic() - began


def end_run(proc: subprocess.Popen[bytes]) -> None:
    """Make sure a run and all its processes (some in sessions of their own) are gone."""
    if proc.poll() is not None:
        return
    kids = {pid: cmdline(pid) for pid in children(proc.pid)}
    with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
        interrupt(proc, timeout=60)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pid, argv in kids.items():
        if argv and cmdline(pid) == argv:  # still the same process (pids are not reused that fast)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def measure(repo: Path, window: float, restart_limit: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pm-demo-local-") as scratch:
        home = Path(os.environ.get("DEMO_LOCAL_KEEP") or scratch)
        project = make_project(home)
        port = free_port()
        log_file = home / "demo.log"
        proc = start(repo, project, port, log_file)
        try:
            if not wait_text(log_file, "board: 2/2 done", 0, 240, proc):
                raise SystemExit(
                    f"the demo did not finish its two tasks; log:\n{log_file.read_text()[-3000:]}"
                )
            time.sleep(5)  # let the workers settle into their long-polls
            kids = children(proc.pid)
            roles = {p: cmdline(p) for p in kids}
            stub = [p for p, c in roles.items() if "pm_agent_stub serve" in c]
            workers = {p: c.split(" -m ")[-1].strip() for p, c in roles.items() if "_worker" in c}
            log(
                f"idle window {window:.0f}s: demo {proc.pid}, stub {stub}, workers {sorted(workers.values())}"
            )
            meters = {"demo_script": CpuMeter([proc.pid]), "stub": CpuMeter(stub)}
            meters |= {name: CpuMeter([pid]) for pid, name in workers.items()}
            with MachineMeter([proc.pid, *kids]) as machine:
                for m in meters.values():
                    m.__enter__()
                time.sleep(window)
                for m in meters.values():
                    m.__exit__()
            idle = {name: round(m.percent, 2) for name, m in meters.items()}
            # Then a user opens the dashboard (the address make demo prints) and leaves the tab:
            # the browser keeps the page's connection, idle, until the stub closes it (after
            # PM_HTTP_HEADER_TIMEOUT, 10 s), which leaves TIME-WAIT on the stub's port.
            tab = DashboardTab(port)
            tab.start()
            time.sleep(12)
            stopped_in = interrupt(proc)
            tab.join(timeout=30)
        finally:
            end_run(proc)
        exited = time.monotonic()
        refused = 0
        started_after: float | None = None
        while time.monotonic() - exited < restart_limit:
            size = log_file.stat().st_size
            again = start(repo, project, port, log_file)
            up = wait_text(log_file, "stub up at", size, 60, again)
            if up:
                started_after = time.monotonic() - exited
                interrupt(again)
                break
            if again.poll() is None:
                raise SystemExit(
                    f"a restart neither started nor exited; log:\n{log_file.read_text()[-3000:]}"
                )
            refused += 1
            time.sleep(0.5)
        return {
            "idle_cpu_percent_of_a_core": idle,
            "idle_window_seconds": window,
            "dashboard_events_seen": tab.events,
            "machine_busy_percent_others": round(machine.others_pct, 1),
            "ctrl_c_to_exit_seconds": round(stopped_in, 2),
            "restart_seconds_after_exit": None if started_after is None else round(started_after, 2),
            "restart_attempts_refused": refused,
            "restart_limit_seconds": restart_limit,
        }


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.demo_local", description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=float, default=30.0, help="idle window in seconds (default 30)")
    p.add_argument("--restart-limit", type=float, default=120.0, help="give up restarting after this (s)")
    p.add_argument("--repo", type=Path, default=REPO_ROOT, help="the checkout whose scripts/run_demo.py runs")
    ns = p.parse_args()
    print(json.dumps(measure(ns.repo.resolve(), ns.window, ns.restart_limit), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
