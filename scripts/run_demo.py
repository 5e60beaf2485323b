"""`make demo`: the stub and the documentation, testing and devops workers as local processes.

    python scripts/run_demo.py                                   # the demo project (make demo)
    python scripts/run_demo.py --project-dir ~/src/app           # your project (make demo PROJECT_DIR=~/src/app)

No Docker needed (devops tasks end blocked with "Docker engine unreachable" when no engine
answers). `--help` says what each option does; an option it does not know is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pm_agent_stub.commands import print_loaded
from pm_agent_stub.operator_link import OperatorError, OperatorLink
from pm_agent_stub.status_report import collect
from pm_protocol import tools

ROOT = Path(__file__).resolve().parent.parent
WORKERS = {"documentation": "documentation_worker", "testing": "testing_worker", "devops": "devops_worker"}
DEFAULT_PROJECT_FILE = "fleet.yaml"


@dataclass(frozen=True)
class Plan:
    """What to run: where the workspace and the board live, which file to load, how long to run."""

    workspace: Path
    run_dir: Path
    project_file: Path | None
    port: int
    until_settled: bool
    timeout: float
    label: str
    outputs: Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/run_demo.py",
        description="Run the PM Agent stub and the documentation, testing and devops workers as local "
        "processes (no Docker), on the demo project or on your own.",
        epilog="""Without --project-dir: the demo. A fresh copy of examples/ under .run/demo/, its ten tasks,
the board printed as it moves; ends once nothing is in progress and nothing left can start.

With --project-dir DIR: your project, where it is. The workspace is DIR's parent folder, so DIR
is the folder <name> in it and payload paths read `<name>/...`, exactly as under Compose (where
DIR is mounted at /workspace/<name>); generated files (docs, reports) land in DIR itself. The
board is kept in .run/projects/<name>/pm_agent.db across runs (--fresh starts it over). The
fleet serves on --port until Ctrl-C, so from another terminal `make show TASK=...`, `make rerun
TASK=...`, `make add-task ...` work on it; --until-settled ends it like the demo.""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--project-dir", type=Path, help="your project's folder (make demo PROJECT_DIR=...)")
    p.add_argument(
        "--project-file",
        help=f"project file to load, relative to --project-dir (default {DEFAULT_PROJECT_FILE} if it exists; "
        "without one the board starts empty: add tasks with `make load` or `make add-task`)",
    )
    p.add_argument(
        "--port",
        type=int,
        help="the stub's port (with --project-dir: PM_AGENT_PORT or 8000, where the CLI looks; "
        "the demo: a free port)",
    )
    p.add_argument(
        "--until-settled", action="store_true", help="with --project-dir: end once the board settles"
    )
    p.add_argument("--fresh", action="store_true", help="with --project-dir: start with an empty board")
    p.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("DEMO_TIMEOUT", "300")),
        help="give up waiting for the board to settle after this many seconds (DEMO_TIMEOUT, default 300)",
    )
    ns = p.parse_args(argv)
    if ns.project_dir is None:
        for flag, given in (
            ("--project-file", ns.project_file),
            ("--fresh", ns.fresh),
            ("--until-settled", ns.until_settled),
        ):
            if given:
                p.error(
                    f"{flag} only applies with --project-dir (the demo always starts fresh and ends settled)"
                )
    return ns


def plan(ns: argparse.Namespace) -> Plan:
    if ns.project_dir is None:
        run_dir = ROOT / ".run" / "demo"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        workspace = run_dir / "workspace"
        shutil.copytree(
            ROOT / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
        )
        port = ns.port or int(os.environ.get("DEMO_PORT") or free_port())
        return Plan(
            workspace,
            run_dir,
            workspace / "demo-project" / "project.yaml",
            port,
            True,
            ns.timeout,
            "the demo project",
            workspace,
        )
    project = ns.project_dir.expanduser().resolve()
    if not project.is_dir():
        raise SystemExit(f"demo: --project-dir {ns.project_dir}: no such folder")
    if project == project.parent:
        raise SystemExit("demo: --project-dir must be a folder inside another (its parent is the workspace)")
    run_dir = ROOT / ".run" / "projects" / project.name
    if ns.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    project_file: Path | None = None
    if ns.project_file:
        project_file = (project / ns.project_file).resolve()
        if not project_file.is_file():
            raise SystemExit(f"demo: --project-file {ns.project_file}: no such file in {project}")
    elif (project / DEFAULT_PROJECT_FILE).is_file():
        project_file = project / DEFAULT_PROJECT_FILE
    port = ns.port or int(os.environ.get("PM_AGENT_PORT") or 8000)
    return Plan(
        project.parent, run_dir, project_file, port, ns.until_settled, ns.timeout, str(project), project
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(
    args: list[str], env: dict[str, str], cwd: Path, *, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """A child process; `own_session` keeps the terminal's Ctrl-C from it (we stop it ourselves, last)."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env={**os.environ, **env}, start_new_session=own_session
    )


async def wait_healthy(board: OperatorLink, stub: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stub.poll() is not None:
            raise SystemExit(f"demo: the stub exited with code {stub.returncode}")
        try:
            await board.call(tools.get_project_status, {})
            return
        except OperatorError:
            await board.close()
            await asyncio.sleep(0.2)
    raise SystemExit(f"demo: the stub did not answer at {board.url} within {timeout:.0f}s")


async def report_new_blockers(board: OperatorLink, blocked: list[str], seen: set[tuple[str, int]]) -> None:
    """Each blocker once, with the stub's suggestion and the command that runs the task again."""
    for task_id in blocked:
        ctx = await board.call(tools.get_task_context, {"task_id": task_id})
        for b in ctx.blockers:
            if b.resolved or (task_id, b.blocker_id) in seen:
                continue
            seen.add((task_id, b.blocker_id))
            print(
                f"\nblocked: {task_id} ({b.severity})\n  {b.description.strip()[:600]}\n"
                f"  suggestion: {b.resolution_suggestion}\n"
                f"  then: make rerun TASK={task_id}   (details: make show TASK={task_id})",
                file=sys.stderr,
            )


async def watch(board: OperatorLink, procs: list[subprocess.Popen[bytes]], p: Plan) -> bool:
    """Print the board as it moves; True once it settles (or, serving, when interrupted)."""
    deadline = time.monotonic() + p.timeout
    last = ""
    seen: set[tuple[str, int]] = set()
    while True:
        report = await collect(board, None)
        status, tasks = report.project_status, report.tasks
        line = (
            f"board: {status.done}/{status.total_tasks} done, {status.in_progress} in progress, "
            f"{status.todo} to do, {status.blocked} blocked ({status.completion_percentage}%)"
        )
        if line != last:
            print(f"\n== {line}\n", file=sys.stderr, flush=True)
            last = line
        await report_new_blockers(board, [t.task_id for t in tasks if t.status == "blocked"], seen)
        settled = status.in_progress == 0 and all(
            t.pending_dependencies > 0 for t in tasks if t.status == "todo"
        )
        if p.until_settled and settled:
            if status.todo:
                print(f"demo: {status.todo} task(s) wait on blocked dependencies", file=sys.stderr)
            return True
        if any(proc.poll() is not None for proc in procs):
            print("demo: a process exited early", file=sys.stderr)
            return False
        if p.until_settled and time.monotonic() > deadline:
            print(f"demo: the board did not settle within {p.timeout:.0f}s", file=sys.stderr)
            return False
        await asyncio.sleep(0.5)


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 15) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
        listing = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "python"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    slim = sorted(line for line in listing.stdout.split() if line.endswith("-slim"))
    return slim[-1] if slim else None


async def load(board: OperatorLink, project_file: Path) -> None:
    text = await asyncio.to_thread(project_file.read_text, encoding="utf-8")
    print_loaded(await board.call(tools.load_project, {"text": text, "source": str(project_file)}))


async def run_fleet(
    p: Plan, stub: subprocess.Popen[bytes], common: dict[str, str], workers: list[subprocess.Popen[bytes]]
) -> bool:
    """Load the project, start the workers (appended to `workers`), watch the board."""
    board = OperatorLink.over_http(f"http://127.0.0.1:{p.port}/mcp", None)
    try:
        await wait_healthy(board, stub)
        print(
            f"demo: stub up at {board.url}, dashboard at http://127.0.0.1:{p.port}/ "
            f"(board {p.run_dir / 'pm_agent.db'}), workspace {p.workspace}",
            file=sys.stderr,
        )
        if p.project_file is not None:
            await load(board, p.project_file)
        for role, module in WORKERS.items():
            workers.append(
                spawn(
                    ["-m", module],
                    {
                        **common,
                        "PM_AGENT_URL": board.url,
                        "WORKSPACE": str(p.workspace),
                        "AGENT_ID": f"{role}-local",
                        "SHUTDOWN_GRACE_SECONDS": "5",
                    },
                    p.run_dir,
                )
            )
        if not p.until_settled:
            print(
                f"demo: serving {p.label} until Ctrl-C; in another terminal: make status, make show TASK=..., "
                "make rerun TASK=...",
                file=sys.stderr,
            )
        started = time.monotonic()
        finished = await watch(board, [stub, *workers], p)
        if p.until_settled:
            print(f"demo: board settled in {time.monotonic() - started:.1f}s", file=sys.stderr)
        return finished
    except OperatorError as exc:
        print(f"demo: {exc.message}", file=sys.stderr)
        return False
    finally:
        await board.close()


def main(argv: list[str] | None = None) -> int:
    p = plan(parse_args(argv))
    if not port_is_free(p.port):
        raise SystemExit(
            f"demo: port {p.port} is taken (a Compose fleet? `make down`), or pick another: --port N "
            "(and PM_AGENT_URL=http://127.0.0.1:N/mcp for the CLI)"
        )
    db = p.run_dir / "pm_agent.db"
    common = {"LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"), "PYTHONUNBUFFERED": "1"}
    # The stub outlives the workers' Ctrl-C: they release their tasks and deregister with it.
    stub = spawn(
        ["-m", "pm_agent_stub", "serve", "--port", str(p.port), "--db", str(db)],
        {**common, "PM_LEASE_SECONDS": os.environ.get("PM_LEASE_SECONDS", "30")},
        p.run_dir,
        own_session=True,
    )
    base_image = local_base_image()
    if base_image:
        common["PYTHON_IMAGE"] = base_image
        print(f"demo: devops tasks build FROM {base_image}", file=sys.stderr)
    finished = False
    workers: list[subprocess.Popen[bytes]] = []
    # Ctrl-C reaches the children too (same process group); we only need to stop waiting.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        finished = asyncio.run(run_fleet(p, stub, common, workers))
    except KeyboardInterrupt:
        print("\ndemo: interrupted, stopping the fleet", file=sys.stderr)
        finished = not p.until_settled  # serving ends with Ctrl-C by design
    finally:
        # One Ctrl-C stops everything; more (uv run forwards the terminal's, a user presses again)
        # must not cut the workers' own shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all(workers)
        stop_all([stub])
    subprocess.run(
        [sys.executable, "-m", "pm_agent_stub", "status", "--db", str(db)],
        check=False,
        env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "120")},
    )
    print(f"demo: generated files are in {p.outputs}", file=sys.stderr)
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
