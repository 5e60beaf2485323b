"""Marcus (upstream PM Agent 0.3.8) as a test host: its own venv, a writable copy, a board.

Marcus needs the 1.x MCP SDK and ~650 MB of dependencies (mlflow, pandas); our code is on
2.x. So it runs in its own venv, built once with uv and cached under `.cache/marcus-venv/`
keyed by a hash of what goes into it (a warm uv cache makes a rebuild take seconds):

    python -m tests.marcus.host venv      # what `make marcus-env` runs; prints the venv path

Each server gets a fresh copy of the read-only source (it writes `data/` and `logs/` into
its own tree), the offline config from ../shared/upstream/MARCUS.md (no LLM, no Planka,
SQLite board), `MARCUS_TELEMETRY=off` and a scratch HOME. Tasks go on the board with
Marcus's own `SQLiteKanban` (`seed_board.py`, run inside Marcus's venv), never with
`create_project`, which would re-scope the board to a new, empty project.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import ServerProcess, free_port
from tests.helpers import REPO_ROOT

MCP_PIN = "mcp>=1.10,<2"
"""Marcus's requirements say `mcp>=1.10.0`; 2.x removed what it imports."""
PYTHON = "3.11"
SEED_SCRIPT = Path(__file__).resolve().with_name("seed_board.py")
VENV_ROOT = REPO_ROOT / ".cache" / "marcus-venv"


def marcus_source() -> Path:
    """The unmodified Marcus copy: `$MARCUS_SOURCE`, else `../shared/upstream/marcus` beside the repo."""
    given = os.environ.get("MARCUS_SOURCE")
    return Path(given) if given else REPO_ROOT.parent / "shared" / "upstream" / "marcus"


def venv_key(source: Path) -> str:
    """Changes whenever anything that goes into the venv changes (requirements, pin, Python)."""
    digest = hashlib.sha256()
    digest.update((source / "requirements.txt").read_bytes())
    digest.update(f"{MCP_PIN}|python{PYTHON}".encode())
    return digest.hexdigest()[:16]


def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    local = REPO_ROOT / ".tools" / "bin" / "uv"
    if local.exists():
        return str(local)
    raise RuntimeError("uv not found: run `make install` first (it bootstraps uv into .tools/)")


def ensure_venv(source: Path | None = None) -> Path:
    """Marcus's venv (built if missing); the path of its python."""
    source = source or marcus_source()
    venv = VENV_ROOT / venv_key(source)
    python = venv / "bin" / "python"
    if (venv / ".complete").exists() and python.exists():
        return python
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    building = venv.with_name(venv.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "--python", PYTHON, str(building)], check=True, env=env)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(building / "bin" / "python"),
            MCP_PIN,
            "-r",
            str(source / "requirements.txt"),
        ],
        check=True,
        env=env,
    )
    (building / ".complete").write_text(venv_key(source) + "\n")
    try:
        building.rename(venv)  # atomic: a concurrent build loses the race and is thrown away
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
    # A venv records its own path in its scripts; `python -m` does not use them, so the
    # renamed venv works as long as we always run `<venv>/bin/python -m ...`.
    return python


def offline_config(run: Path, port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """MARCUS.md's working offline config: no LLM, no Planka, a SQLite board under `run`."""
    return {
        "single_project_mode": True,
        "ai": {"provider": "anthropic", "enabled": False},
        "kanban": {"provider": "sqlite", "board_name": "B", "sqlite_db_path": str(run / "kanban.db")},
        "features": {"events": True, "context": True, "memory": True, "visibility": False},
        "hybrid_inference": {"enable_ai_inference": False},
        "transport": {"type": "http", "http_host": host, "http_port": port, "http_path": "/mcp"},
        "data_dir": str(run / "data"),
        "cache_dir": str(run / "cache"),
    }


def marcus_env(python: Path, run: Path, config: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "MARCUS_CONFIG": str(config),
            "MARCUS_TELEMETRY": "off",
            "HOME": str(run / "home"),
            "PYTHONPATH": ".",
            "PYTHONUNBUFFERED": "1",
            "VIRTUAL_ENV": str(python.parent.parent),
        }
    )
    return env


@dataclass
class MarcusProcess(ServerProcess):
    """A running `python -m src.marcus_mcp.server --http` on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    run: Path
    python: Path
    tree: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.run / "kanban.db"

    def stop(self, timeout: float = 15.0) -> int:
        return super().stop(timeout)

    def seed(self, tasks: list[dict[str, Any]], project_name: str = "fleet") -> dict[str, str]:
        """Put tasks on the board with Marcus's own SQLiteKanban; {key: Marcus task id}."""
        return seed_board(self.python, self.tree, self.db, tasks, project_name=project_name, env=self.env)

    def board(self) -> dict[str, dict[str, Any]]:
        return read_board(self.db)


def initialize_request(host_header: str | None = None, port: int = 0) -> urllib.request.Request:
    """A bare MCP `initialize` POST: answers 200 once the server is up (421 for a refused Host)."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "1"},
            },
        }
    ).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    if host_header is not None:
        req.add_header("Host", host_header)
    return req


def post_initialize(port: int, host_header: str | None = None, timeout: float = 2.0) -> int:
    """The HTTP status of an `initialize` POST (connection errors raise OSError)."""
    try:
        with urllib.request.urlopen(initialize_request(host_header, port), timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def start_marcus(
    run: Path,
    *,
    source: Path | None = None,
    python: Path | None = None,
    port: int | None = None,
    timeout: float = 120.0,
) -> MarcusProcess:
    """Copy the source into `run/marcus`, write the offline config, start, wait until it answers."""
    source = source or marcus_source()
    python = python or ensure_venv(source)
    run.mkdir(parents=True, exist_ok=True)
    tree = run / "marcus"
    if not tree.exists():
        shutil.copytree(source, tree)
        for path in [tree, *tree.rglob("*")]:  # the shared copy is read-only; ours must not be
            path.chmod(path.stat().st_mode | 0o200)
    (run / "home").mkdir(exist_ok=True)
    port = port or free_port()
    config = run / "config_marcus.json"
    config.write_text(json.dumps(offline_config(run, port), indent=2))
    env = marcus_env(python, run, config)
    log_path = run / f"marcus-{time.monotonic_ns()}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "src.marcus_mcp.server", "--http"],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    marcus = MarcusProcess(proc, port, run, python, tree, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not marcus.alive():
            raise RuntimeError(f"Marcus exited with {proc.returncode}:\n{marcus.logs()[-4000:]}")
        try:
            if post_initialize(port, timeout=2.0) == 200:
                return marcus
        except OSError:
            pass
        time.sleep(0.2)
    marcus.stop()
    raise TimeoutError(f"Marcus did not answer within {timeout:.0f}s:\n{marcus.logs()[-4000:]}")


def seed_board(
    python: Path,
    tree: Path,
    db: Path,
    tasks: list[dict[str, Any]],
    *,
    project_name: str = "fleet",
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run `seed_board.py` in Marcus's venv: each task dict has a `key`; dependencies may name keys."""
    spec = {"db_path": str(db), "project_name": project_name, "tasks": tasks}
    done = subprocess.run(
        [str(python), str(SEED_SCRIPT)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=tree,
        env=env or marcus_env(python, db.parent, db.parent / "none.json"),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding Marcus's board failed ({done.returncode}):\n{done.stderr[-4000:]}")
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


def read_board(db: Path) -> dict[str, dict[str, Any]]:
    """Marcus's tasks table as {task id: row}, with `labels`, `dependencies` and `comments`."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=15)
    conn.row_factory = sqlite3.Row
    try:
        tasks = {row["id"]: dict(row) for row in conn.execute("SELECT * FROM tasks")}
        for task in tasks.values():
            task["labels"], task["dependencies"], task["comments"] = [], [], []
        for row in conn.execute("SELECT task_id, label FROM task_labels"):
            tasks[row["task_id"]]["labels"].append(row["label"])
        for row in conn.execute("SELECT task_id, depends_on_id FROM task_dependencies"):
            tasks[row["task_id"]]["dependencies"].append(row["depends_on_id"])
        for row in conn.execute("SELECT task_id, content FROM comments ORDER BY created_at"):
            if row["task_id"] in tasks:
                tasks[row["task_id"]]["comments"].append(row["content"])
        return tasks
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    if argv[:1] != ["venv"]:
        print("usage: python -m tests.marcus.host venv", file=sys.stderr)
        return 2
    source = marcus_source()
    if not (source / "requirements.txt").exists():
        print(f"no Marcus source at {source} (set MARCUS_SOURCE)", file=sys.stderr)
        return 1
    print(ensure_venv(source).parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
