"""`make demo`: the stub and the documentation, testing and devops workers as local processes.

    python scripts/run_demo.py                                   # the demo project (make demo)
    python scripts/run_demo.py --project-dir ~/src/app           # your project (make demo PROJECT_DIR=~/src/app)

No Docker needed (devops tasks end blocked with "Docker engine unreachable" when no engine
answers). `--help` says what each option does; an option it does not know is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from demo_guard import RunLock, a_free_port, port_is_free, port_taken
from demo_watch import watch

from pm_agent_stub import project_folder
from pm_agent_stub.commands import client_token, print_loaded
from pm_agent_stub.operator_link import OperatorError, OperatorLink
from pm_agent_stub.project_file import ProjectFileError
from pm_protocol import tools

ROOT = Path(__file__).resolve().parent.parent
WORKERS = {"documentation": "documentation_worker", "testing": "testing_worker", "devops": "devops_worker"}
DEFAULT_PROJECT_FILE = "fleet.yaml"
DEMO_GRACE_SECONDS = "5"  # the demo's own SHUTDOWN_GRACE_SECONDS, unless the environment sets one


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
    project_dir: Path | None  # None: the demo
    fresh: bool
    folder: str  # the project's folder in the workspace: a task naming none runs there


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/run_demo.py",
        description="Run the PM Agent stub and the documentation, testing and devops workers as local "
        "processes (no Docker), on the demo project or on your own.",
        epilog="""Without --project-dir: the demo. A fresh copy of examples/ under .run/demo/, its ten tasks,
the board printed as it moves; ends once nothing is in progress and nothing left can start.

With --project-dir DIR: your project, where it is. The workspace is DIR's parent folder, so DIR
is the folder <name> in it and payload paths read `<name>/...`, exactly as under Compose (where
DIR is mounted at /workspace/<name>); a task whose payload names no folder runs in DIR, and
generated files (docs, reports) land in DIR itself. The board is kept across runs in
.run/projects/<name>-<hash of DIR's path>/pm_agent.db (a start says what it holds; --fresh
starts it over). The fleet serves on PM_AGENT_PORT (default 8000) until Ctrl-C, so from
another terminal `make status`, `make show TASK=...`, `make rerun TASK=...`, `make add-task
...` work on it; --until-settled ends it like the demo.

One run per folder: a second `make demo` on the same one refuses to start. Ctrl-C stops the
workers with one signal each (a worker finishes its task within SHUTDOWN_GRACE_SECONDS,
5 here unless set, else gives it back); Ctrl-C again makes them give their tasks back now.""",
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
        help="the stub's port (default PM_AGENT_PORT, which `make status` and the other CLI commands "
        "read too; else with --project-dir 8000, for the demo DEMO_PORT or a free port)",
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
    """What to run, decided without touching anything (`prepare` does that, under the run's lock)."""
    env_port = os.environ.get("PM_AGENT_PORT")
    if ns.project_dir is None:
        run_dir = ROOT / ".run" / "demo"
        workspace = run_dir / "workspace"
        port = ns.port or int(env_port or os.environ.get("DEMO_PORT") or a_free_port())
        return Plan(
            workspace,
            run_dir,
            workspace / "demo-project" / "project.yaml",
            port,
            True,
            ns.timeout,
            "the demo project",
            workspace,
            None,
            True,
            "demo-project",
        )
    project = ns.project_dir.expanduser().resolve()
    if not project.is_dir():
        raise SystemExit(f"demo: --project-dir {ns.project_dir}: no such folder")
    if project == project.parent:
        raise SystemExit("demo: --project-dir must be a folder inside another (its parent is the workspace)")
    project_file: Path | None = None
    if ns.project_file:
        project_file = (project / ns.project_file).resolve()
        if not project_file.is_file():
            raise SystemExit(f"demo: --project-file {ns.project_file}: no such file in {project}")
    elif (project / DEFAULT_PROJECT_FILE).is_file():
        project_file = project / DEFAULT_PROJECT_FILE
    port = ns.port or int(env_port or 8000)
    return Plan(
        project.parent,
        board_folder(project),
        project_file,
        port,
        ns.until_settled,
        ns.timeout,
        str(project),
        project,
        project,
        ns.fresh,
        project.name,
    )


def board_folder(project: Path) -> Path:
    """Where the board of the project folder `project` is kept: by its path, not only its name.

    Kept by name, a fresh folder called like an earlier one found that one's board, its tasks
    already done, and did nothing. The name stays in front so `ls .run/projects` reads well."""
    digest = hashlib.sha256(str(project).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return ROOT / ".run" / "projects" / f"{project.name}-{digest}"


def prepare(p: Plan) -> str | None:
    """Make the run's folder; for a project whose board is kept, a line saying so (else None)."""
    if p.project_dir is None:
        if p.run_dir.exists():
            shutil.rmtree(p.run_dir)
        shutil.copytree(
            ROOT / "examples", p.workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
        )
        return None
    if p.fresh and p.run_dir.exists():
        shutil.rmtree(p.run_dir)
    kept = (p.run_dir / "pm_agent.db").exists()
    p.run_dir.mkdir(parents=True, exist_ok=True)
    (p.run_dir / "project-dir").write_text(f"{p.project_dir}\n", encoding="utf-8")
    return str(p.run_dir / "pm_agent.db") if kept else None


def spawn(args: list[str], env: dict[str, str], cwd: Path, lock: RunLock) -> subprocess.Popen[bytes]:
    """A child in a session of its own, holding the run's lock.

    Its own session keeps the terminal's Ctrl-C from it: we stop it ourselves with one
    SIGTERM. In our process group every worker got two signals (the terminal's SIGINT, then
    our SIGTERM), and the second means "hurry": it gave its task back at once and
    SHUTDOWN_GRACE_SECONDS never applied."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        start_new_session=True,
        pass_fds=(lock.fd,),
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


class Stopper:
    """Ctrl-C, and how the run's processes are stopped.

    The first Ctrl-C (or SIGTERM, or a closed terminal) ends the watch; each worker then gets
    one SIGTERM: it finishes its task within its grace, else gives it back. Another Ctrl-C at
    least `SAME_PRESS_SECONDS` later hurries them (a second SIGTERM: give the task back now).
    Sooner it is the same press delivered twice: `uv run` (which `make demo` goes through)
    forwards the terminal's SIGINT to us 200 ms after the terminal sent it."""

    SAME_PRESS_SECONDS = 1.0

    def __init__(self) -> None:
        self.stopping: list[subprocess.Popen[bytes]] = []
        self.interrupted_at: float | None = None
        self.hurried = False

    def on_signal(self, *_: object) -> None:
        now = time.monotonic()
        if self.interrupted_at is None:
            self.interrupted_at = now
            raise KeyboardInterrupt()
        if now - self.interrupted_at < self.SAME_PRESS_SECONDS or self.hurried or not self.stopping:
            return
        self.hurried = True
        print("\ndemo: Ctrl-C again: the workers give their tasks back now", file=sys.stderr, flush=True)
        for proc in self.stopping:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self, procs: list[subprocess.Popen[bytes]], grace: float, *, hurry: bool) -> None:
        """SIGTERM to each, then wait up to `grace` (then SIGKILL); `hurry`: Ctrl-C may hurry them."""
        self.stopping = procs if hurry else []
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
        self.stopping = []


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


async def load(board: OperatorLink, p: Plan) -> None:
    """Load the project file; a task naming no folder gets the project's (project_folder.py)."""
    assert p.project_file is not None
    label = str(p.project_file)
    text = await asyncio.to_thread(p.project_file.read_text, encoding="utf-8")
    source = "the project's folder" if p.project_dir is not None else "the demo's folder"
    try:
        filled, notes = project_folder.with_project_folder(
            project_folder.parse_project(text, label), p.folder, source
        )
    except ProjectFileError as exc:
        raise SystemExit(f"demo: {exc}") from None
    result = await board.call(tools.load_project, {"text": filled or text, "source": label})
    print_loaded(result)
    if result.added:
        for task_id, note in notes:
            print(f"warning: task '{task_id}': {note}", file=sys.stderr)


async def tell_kept(board: OperatorLink, db: str) -> None:
    """A project's board kept from an earlier run: what it holds, and how to start over."""
    status = (await board.call(tools.get_project_status, {})).project_status
    print(
        f"demo: the board of this folder from an earlier run is kept ({db}): {status.total_tasks} tasks, "
        f"{status.done} done, {status.blocked} blocked, {status.todo} to do. A project file adds only "
        "tasks not on it yet (by id); `make rerun TASK=...` runs one again, and "
        "`make demo PROJECT_DIR=... DEMO_ARGS=--fresh` starts over with an empty board",
        file=sys.stderr,
    )


async def run_fleet(
    p: Plan,
    stub: subprocess.Popen[bytes],
    common: dict[str, str],
    workers: list[subprocess.Popen[bytes]],
    lock: RunLock,
    kept: str | None,
) -> bool:
    """Load the project, start the workers (appended to `workers`), watch the board."""
    token = client_token()
    board = OperatorLink.over_http(f"http://127.0.0.1:{p.port}/mcp", token)
    try:
        await wait_healthy(board, stub)
        print(
            f"demo: stub up at {board.url}, dashboard at http://127.0.0.1:{p.port}/ "
            f"(board {p.run_dir / 'pm_agent.db'}), workspace {p.workspace}",
            file=sys.stderr,
        )
        if kept is not None:
            await tell_kept(board, kept)
        if p.project_file is not None:
            await load(board, p)
        for role, module in WORKERS.items():
            workers.append(
                spawn(
                    ["-m", module],
                    {
                        **common,
                        "PM_AGENT_URL": board.url,
                        "WORKSPACE": str(p.workspace),
                        "AGENT_ID": f"{role}-local",
                        "SHUTDOWN_GRACE_SECONDS": grace_seconds(),
                    },
                    p.run_dir,
                    lock,
                )
            )
        if not p.until_settled:
            print(
                f"demo: serving {p.label} until Ctrl-C; in another terminal: make status, make show TASK=..., "
                "make rerun TASK=...",
                file=sys.stderr,
            )
        started = time.monotonic()
        finished = await watch(
            board, token, [stub, *workers], until_settled=p.until_settled, timeout=p.timeout
        )
        if p.until_settled:
            print(f"demo: board settled in {time.monotonic() - started:.1f}s", file=sys.stderr)
        return finished
    except OperatorError as exc:
        print(f"demo: {exc.message}", file=sys.stderr)
        return False
    finally:
        await board.close()


def grace_seconds() -> str:
    return os.environ.get("SHUTDOWN_GRACE_SECONDS") or DEMO_GRACE_SECONDS


def stop_wait_seconds() -> float:
    """How long the workers get to stop: their grace and time to report (a bad value: the
    worker itself refuses it at start, naming the variable)."""
    try:
        return float(grace_seconds()) + 15
    except ValueError:
        return 20.0


def main(argv: list[str] | None = None) -> int:
    p = plan(parse_args(argv))
    lock = RunLock(p.run_dir, f"{p.project_dir} (board {p.run_dir})" if p.project_dir else str(p.run_dir))
    lock.acquire(p.port)
    if not port_is_free(p.port):
        raise SystemExit(port_taken(p.port, p.project_dir))
    kept = prepare(p)
    db = p.run_dir / "pm_agent.db"
    common = {"LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"), "PYTHONUNBUFFERED": "1"}
    # The stub outlives the workers: they release their tasks and deregister with it.
    stub = spawn(
        ["-m", "pm_agent_stub", "serve", "--port", str(p.port), "--db", str(db)],
        {**common, "PM_LEASE_SECONDS": os.environ.get("PM_LEASE_SECONDS", "30")},
        p.run_dir,
        lock,
    )
    base_image = local_base_image()
    if base_image:
        common["PYTHON_IMAGE"] = base_image
        print(f"demo: devops tasks build FROM {base_image}", file=sys.stderr)
    finished = False
    workers: list[subprocess.Popen[bytes]] = []
    stopper = Stopper()
    # The children have sessions of their own: Ctrl-C (and a closed terminal, or `kill`)
    # reaches only us, and we stop them.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stopper.on_signal)
    try:
        finished = asyncio.run(run_fleet(p, stub, common, workers, lock, kept))
    except KeyboardInterrupt:
        print(
            f"\ndemo: interrupted, stopping the fleet: each worker finishes its task within "
            f"{grace_seconds()} s (SHUTDOWN_GRACE_SECONDS) or gives it back; Ctrl-C again gives them back now",
            file=sys.stderr,
            flush=True,
        )
        finished = not p.until_settled  # serving ends with Ctrl-C by design
    finally:
        stopper.interrupted_at = stopper.interrupted_at or time.monotonic()  # no KeyboardInterrupt now
        stopper.stop(workers, grace=stop_wait_seconds(), hurry=True)
        stopper.stop([stub], grace=15, hurry=False)
    subprocess.run(
        [sys.executable, "-m", "pm_agent_stub", "status", "--db", str(db)],
        check=False,
        env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "120")},
    )
    lock.release()
    print(f"demo: generated files are in {p.outputs}", file=sys.stderr)
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
