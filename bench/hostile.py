"""`python -m bench.hostile [CASE ...]`: the figures of docs/reliability.md's "hostile inputs" table.

Each case is an attack from issue 17 run against the real stub and one real worker
process, and prints what happened: how the task ended, how long the worker ran
(`seconds`, start-up included) and how long from assignment to the outcome
(`task_seconds`), the worker's peak RSS, how often the task was handed out, and what the
case is about (a leaked secret, a refused artifact, a survivor).
Nothing asserts on time; the numbers are for reading. Cases: leak, loop, big, gil,
longline, many, setsid, tag (needs a Docker engine and PYTHON_IMAGE).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import load_tasks, start_stub

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_worker(
    module: str,
    ws: Path,
    tasks: list[dict[str, Any]],
    *,
    limit: float = 120.0,
    env: dict[str, str] | None = None,
    max_tasks: int = 1,
) -> dict[str, Any]:
    """Run `python -m module` over `tasks` until it exits (MAX_TASKS) or `limit` seconds pass."""
    tmp = ws.parent
    stub = start_stub(tmp / f"board-{uuid.uuid4().hex[:6]}.db")
    try:
        load_tasks(stub.db, *tasks)
        full = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_", "DOCS_"))}
        full.update(
            {
                "PM_AGENT_URL": stub.url,
                "WORKSPACE": str(ws),
                "AGENT_ID": f"bench-{module}",
                "POLL_WAIT_SECONDS": "1",
                "LOG_FORMAT": "json",
                "HEALTH_DIR": str(tmp / "health"),
                "MAX_TASKS": str(max_tasks),
                **(env or {}),
            }
        )
        log = tmp / f"{module}-{uuid.uuid4().hex[:6]}.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module], env=full, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        peak = 0.0
        while proc.poll() is None and time.monotonic() - started < limit:
            peak = max(peak, rss_mib(proc.pid))
            time.sleep(0.05)
        seconds = time.monotonic() - started
        ended = proc.poll() is not None
        if not ended:
            proc.kill()
            proc.wait()
        conn = sqlite3.connect(stub.db)
        try:
            status = dict(conn.execute("SELECT task_id, status FROM tasks").fetchall())
            blockers = [r[0] for r in conn.execute("SELECT description FROM blockers ORDER BY blocker_id")]
            artifacts = [
                json.loads(r[0]) if r[0] else None
                for r in conn.execute("SELECT data FROM artifacts ORDER BY artifact_id")
            ]
            assigned = conn.execute(
                "SELECT count(*) FROM events WHERE kind IN ('assigned', 'renewed')"
            ).fetchone()[0]
            progress = [r[0] for r in conn.execute("SELECT message FROM progress_log ORDER BY id")]
            first = conn.execute("SELECT min(at) FROM events WHERE kind = 'assigned'").fetchone()[0]
            last = conn.execute(
                "SELECT max(at) FROM events WHERE kind IN ('completed', 'blocked')"
            ).fetchone()[0]
        finally:
            conn.close()
        text = log.read_text(errors="replace")
        task_seconds = round(last - first, 2) if first is not None and last is not None else None
        return {
            "ended": ended,
            "seconds": round(seconds, 1),
            "task_seconds": task_seconds,
            "peak_rss_mib": round(peak, 1),
            "status": status,
            "blockers": blockers,
            "artifacts": artifacts,
            "handed_out": assigned,
            "progress": progress,
            "refused_reports": text.count("outcome_refused_blocking_instead"),
        }
    finally:
        stub.stop()


def show(case: str, result: dict[str, Any], **extra: Any) -> None:
    keep = {
        k: result[k]
        for k in (
            "ended",
            "seconds",
            "task_seconds",
            "peak_rss_mib",
            "status",
            "handed_out",
            "refused_reports",
        )
    }
    blocker = result["blockers"][-1] if result["blockers"] else None
    print(
        json.dumps(
            {
                "case": case,
                **keep,
                "blocker": blocker and blocker[:300],
                "blocker_chars": blocker and len(blocker),
                **extra,
            }
        ),
        flush=True,
    )


def docs_task(path: str) -> dict[str, Any]:
    return {
        "id": "t",
        "name": "docs",
        "required_skills": ["documentation"],
        "payload": {"path": path, "output": "site/"},
    }


def case_leak(tmp: Path) -> None:
    secret = f"sk-outside-{uuid.uuid4().hex[:6]}"
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "secret.py").write_text(f'API_KEY = "{secret}"\n')
    (tmp / "ws" / "pkg").mkdir(parents=True)
    (tmp / "ws" / "pkg" / "__init__.py").write_text('"""pkg."""\n')
    (tmp / "ws" / "pkg" / "leakdir").symlink_to(tmp / "elsewhere")
    result = run_worker("documentation_worker", tmp / "ws", [docs_task("pkg")])
    leaked = [p.name for p in (tmp / "ws" / "site").rglob("*.md") if secret in p.read_text()]
    show("leak", result, pages_with_the_secret=leaked, last_message=result["progress"][-1:])


def case_loop(tmp: Path) -> None:
    (tmp / "ws" / "loop").mkdir(parents=True)
    (tmp / "ws" / "loop" / "mod.py").write_text("x = 1\n")
    (tmp / "ws" / "loop" / "l1").symlink_to(".")
    (tmp / "ws" / "loop" / "l2").symlink_to(".")
    show("loop", run_worker("documentation_worker", tmp / "ws", [docs_task("loop")], limit=60))


def case_big(tmp: Path) -> None:
    (tmp / "ws" / "big").mkdir(parents=True)
    line = "x = 1  # padding the module to 50 MB\n"
    (tmp / "ws" / "big" / "huge.py").write_text(line * (50_000_000 // len(line) + 1))
    show("big", run_worker("documentation_worker", tmp / "ws", [docs_task("big")]))


def case_gil(tmp: Path) -> None:
    """The longest pause of a 10 ms ticker (what the lease heartbeat lives on) while a 5.5 MB
    module is parsed in a thread (as before) and in the parser child (as now)."""
    import ast

    from documentation_worker.parsing import ParserProcess
    from documentation_worker.sources import Source

    source = "".join(
        f"def f{i}(a, b=1, *c, d: int = 2, **e) -> int:\n    '''doc {i}'''\n    return a + b\n"
        for i in range(60_000)
    ).encode()

    async def longest_pause(work: Any) -> float:
        worst, last, done = 0.0, time.monotonic(), asyncio.Event()

        async def ticker() -> None:
            nonlocal worst, last
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                worst, last = max(worst, now - last), now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        last = time.monotonic()
        await work()
        done.set()
        await tick
        return worst

    async def in_thread() -> None:
        await asyncio.to_thread(ast.parse, source)

    async def in_child() -> None:
        async with ParserProcess(timeout=600, memory_mb=4096) as parser:
            await parser.parse(Source("big", "big.py", source))

    thread = asyncio.run(longest_pause(in_thread))
    child = asyncio.run(longest_pause(in_child))
    print(
        json.dumps(
            {
                "case": "gil",
                "module_mb": round(len(source) / 1e6, 1),
                "longest_event_loop_pause_s": {
                    "ast.parse in a thread": round(thread, 2),
                    "parser child": round(child, 2),
                },
            }
        ),
        flush=True,
    )


def case_longline(tmp: Path) -> None:
    (tmp / "ws").mkdir()
    task = {
        "id": "t",
        "name": "long line",
        "required_skills": ["testing"],
        "payload": {"command": "python -c \"print('E'*20000); raise SystemExit(1)\""},
    }
    show("longline", run_worker("testing_worker", tmp / "ws", [task], limit=20, max_tasks=0))


def case_many(tmp: Path) -> None:
    (tmp / "ws" / "many").mkdir(parents=True)
    (tmp / "ws" / "many" / "test_many.py").write_text(
        "import pytest\n\n\n@pytest.mark.parametrize('case', [f'case-{i:05d}-' + 'x' * 40 for i in range(6000)])\n"
        "def test_fails(case):\n    assert case == 'expected'\n"
    )
    task = {
        "id": "t",
        "name": "6000 failing",
        "required_skills": ["testing"],
        "payload": {
            "path": "many",
            "command": "python -m pytest -q --tb=line -p no:cacheprovider",
            "env": {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        },
    }
    result = run_worker("testing_worker", tmp / "ws", [task], limit=300)
    data = result["artifacts"][0] if result["artifacts"] else None
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()) if data else None
    show(
        "many",
        result,
        artifact_bytes=size,
        failed=data and data.get("failed"),
        ids_listed=data and len(data.get("failing", [])),
        ids_not_listed=data and data.get("failing_not_listed"),
    )


def case_setsid(tmp: Path) -> None:
    (tmp / "ws" / "escape").mkdir(parents=True)
    code = (
        "import subprocess; p = subprocess.Popen(['setsid', 'sleep', '300']); "
        "open('grandchild.pid', 'w').write(str(p.pid))"
    )
    task = {
        "id": "t",
        "name": "escape",
        "required_skills": ["testing"],
        "payload": {"path": "escape", "command": f'python -c "{code}"'},
    }
    result = run_worker("testing_worker", tmp / "ws", [task])
    pid = int((tmp / "ws" / "escape" / "grandchild.pid").read_text())
    time.sleep(1.0)
    alive = Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] not in (
        "Z",
        "X",
    )
    if alive:
        os.kill(pid, signal.SIGKILL)
    show("setsid", result, grandchild_alive_after_task=alive)


def case_tag(tmp: Path) -> None:
    import docker

    base = os.environ.get("PYTHON_IMAGE", "python:3.11-slim")
    client = docker.from_env()
    foreign = f"pm-fleet-bench/foreign-{uuid.uuid4().hex[:8]}:latest"
    client.images.get(base).tag(*foreign.rsplit(":", 1))
    before = client.images.get(foreign).id
    (tmp / "ws" / "img").mkdir(parents=True)
    (tmp / "ws" / "img" / "Dockerfile").write_text("ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN echo built\n")
    task = {
        "id": "t",
        "name": "tag",
        "required_skills": ["docker"],
        "payload": {"context": "img", "tag": foreign},
    }
    try:
        result = run_worker("devops_worker", tmp / "ws", [task], env={"PYTHON_IMAGE": base})
        show("tag", result, tag_moved=client.images.get(foreign).id != before)
    finally:
        client.images.remove(foreign)
        client.close()


CASES = {
    "leak": case_leak,
    "loop": case_loop,
    "big": case_big,
    "gil": case_gil,
    "longline": case_longline,
    "many": case_many,
    "setsid": case_setsid,
    "tag": case_tag,
}


def main(argv: list[str]) -> None:
    for name in argv or [c for c in CASES if c != "tag"]:
        tmp = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
        try:
            CASES[name](tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
