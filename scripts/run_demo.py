"""`make demo`: the stub and every worker as local processes on a copy of the demo project.

No Docker needed (the devops tasks end blocked with "Docker engine unreachable" when no
engine answers). The workspace is a fresh copy under .run/demo/, so a run never changes
the committed example. Ends when no task is left to do, prints the final board, and stops
everything; Ctrl-C stops everything cleanly at any time.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run" / "demo"
WORKERS = {"documentation": "documentation_worker", "testing": "testing_worker", "devops": "devops_worker"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=RUN, env={**os.environ, **env})


async def board_status(url: str) -> dict[str, Any]:
    async with Client(url) as client:
        result = await client.call_tool("get_project_status", {})
        data: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
        return data


def board_tasks(db: Path) -> list[dict[str, Any]]:
    """Every task as the stub's own `status --json` reports it."""
    board = subprocess.run([sys.executable, "-m", "pm_agent_stub", "status", "--db", str(db), "--json", "--all"],
                           capture_output=True, text=True, check=False)
    tasks: list[dict[str, Any]] = json.loads(board.stdout or "{}").get("tasks", [])
    return tasks


def blocked_tasks(db: Path) -> list[str]:
    return [t["task_id"] for t in board_tasks(db) if t["status"] == "blocked"]


def nothing_can_move(db: Path) -> bool:
    """Every task left to do waits on a dependency (behind a blocker): the board has settled."""
    return all(t["pending_dependencies"] > 0 for t in board_tasks(db) if t["status"] == "todo")


async def report_blockers(url: str, blocked: list[str]) -> None:
    """The blocked tasks, their blocker and the stub's suggestion: what a person acts on next."""
    async with Client(url) as client:
        for task_id in blocked:
            result = await client.call_tool("get_task_context", {"task_id": task_id})
            ctx = json.loads(result.content[0].text)  # type: ignore[union-attr]
            for blocker in ctx.get("blockers", []):
                if blocker.get("resolved_at"):
                    continue
                print(f"\nblocked: {task_id} ({blocker.get('severity')})\n"
                      f"  {str(blocker.get('description', '')).strip()[:600]}\n"
                      f"  suggestion: {blocker.get('resolution_suggestion')}", file=sys.stderr)


async def wait_healthy(url: str, stub: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stub.poll() is not None:
            raise SystemExit(f"demo: the stub exited with code {stub.returncode}")
        try:
            await board_status(url)
            return
        except Exception:
            await asyncio.sleep(0.2)
    raise SystemExit(f"demo: the stub did not answer at {url} within {timeout:.0f}s")


async def watch(url: str, db: Path, procs: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    """Print the board as it moves; True once nothing is in progress and nothing left can start."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        status = (await board_status(url))["project_status"]
        line = ("board: {done}/{total_tasks} done, {in_progress} in progress, {todo} to do, "
                "{blocked} blocked ({completion_percentage}%)").format(**status)
        if line != last:
            print(f"\n== {line}\n", file=sys.stderr, flush=True)
            last = line
        if status["in_progress"] == 0 and (status["todo"] == 0 or await asyncio.to_thread(nothing_can_move, db)):
            if status["todo"]:
                print(f"demo: {status['todo']} task(s) wait on blocked dependencies", file=sys.stderr)
            return True
        if any(p.poll() is not None for p in procs):
            print("demo: a process exited early", file=sys.stderr)
            return False
        await asyncio.sleep(0.5)
    print(f"demo: the board did not finish within {timeout:.0f}s", file=sys.stderr)
    return False


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 15) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def local_base_image() -> str | None:
    """PYTHON_IMAGE, else a python:*-slim image the local engine already has (no registry needed).

    The demo image's Dockerfile starts `FROM ${PYTHON_IMAGE}`; where no registry answers
    (as on machines set up by ensure-engine.sh) only a local base image can build it.
    """
    if os.environ.get("PYTHON_IMAGE"):
        return os.environ["PYTHON_IMAGE"]
    if shutil.which("docker") is None:
        return None
    try:
        listing = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "python"],
                                 capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    slim = sorted(line for line in listing.stdout.split() if line.endswith("-slim"))
    return slim[-1] if slim else None


def main() -> int:
    if RUN.exists():
        shutil.rmtree(RUN)
    workspace = RUN / "workspace"
    shutil.copytree(ROOT / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    port = int(os.environ.get("DEMO_PORT") or free_port())
    url = f"http://127.0.0.1:{port}/mcp"
    db = RUN / "pm_agent.db"
    common = {"LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"), "PYTHONUNBUFFERED": "1"}
    stub = spawn(["-m", "pm_agent_stub", "serve", "--port", str(port), "--db", str(db),
                  "--project", str(workspace / "demo-project" / "project.yaml")],
                 {**common, "PM_LEASE_SECONDS": os.environ.get("PM_LEASE_SECONDS", "30")})
    procs = [stub]
    base_image = local_base_image()
    if base_image:
        common["PYTHON_IMAGE"] = base_image
        print(f"demo: devops tasks build FROM {base_image}", file=sys.stderr)
    finished = False
    # Ctrl-C reaches the children too (same process group); we only need to stop waiting.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        asyncio.run(wait_healthy(url, stub))
        print(f"demo: stub up at {url}, dashboard at http://127.0.0.1:{port}/, workspace {workspace}", file=sys.stderr)
        for role, module in WORKERS.items():
            procs.append(spawn(["-m", module], {**common, "PM_AGENT_URL": url, "WORKSPACE": str(workspace),
                                                "AGENT_ID": f"{role}-demo", "SHUTDOWN_GRACE_SECONDS": "5"}))
        started = time.monotonic()
        finished = asyncio.run(watch(url, db, procs[1:], float(os.environ.get("DEMO_TIMEOUT", "300"))))
        print(f"demo: board settled in {time.monotonic() - started:.1f}s", file=sys.stderr)
        asyncio.run(report_blockers(url, blocked_tasks(db)))
    except KeyboardInterrupt:
        print("\ndemo: interrupted, stopping the fleet", file=sys.stderr)
    finally:
        stop_all(procs[1:])
        stop_all([stub])
    subprocess.run([sys.executable, "-m", "pm_agent_stub", "status", "--db", str(db)], check=False,
                   env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "120")})
    print(f"demo: generated files are in {workspace}", file=sys.stderr)
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
