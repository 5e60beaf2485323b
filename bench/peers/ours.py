"""Our side: the real stub process and real pm_worker step-worker processes (examples/step_worker.py,
as bench/drain.py runs them), talked to only through the stub's own HTTP/MCP face.

The board is a parameter: `sqlite` (a fresh board file per block) or `postgresql` (a fresh
database per block in the bench's own PostgreSQL cluster), given to the stub as its `--db`
(a path, or a `postgresql://` URL). Nothing here reads the board directly, so the same code
measures any backend the stub has: jobs go in through the `load_project` tool (what
`make load` does), the gate reads `/healthz` (workers parked in `request_next_task`), and
start and completion times come from the workers' own `task received` / `task completed`
log lines. On PostgreSQL the coordinator is the stub plus the PostgreSQL server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._harness import start_workers, step_tasks
from bench.peers.base import System, Workers
from bench.peers.servers import Postgres, ServerUnavailable
from bench.peers.stamps import Tail
from pm_agent_stub.remote import RemoteBoard
from pm_agent_stub.testing import ServerProcess, free_port, http_get_json, stub_env

BOARDS = ("sqlite", "postgresql")


@dataclass
class BoardStub(ServerProcess):
    """`python -m pm_agent_stub serve --db <board>` on 127.0.0.1, where the board is a path or a URL."""

    proc: subprocess.Popen[bytes]
    port: int
    board: str
    log_path: Path


def start_board_stub(board: str, log_path: Path, timeout: float = 60.0) -> BoardStub:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        cmd = [sys.executable, "-m", "pm_agent_stub", "serve", "--port", str(port), "--db", board]
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=stub_env({"LOG_LEVEL": "info"}),
                cwd=log_path.parent,
            )
        stub = BoardStub(proc=proc, port=port, board=board, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and stub.alive():
            try:
                status, _ = http_get_json(f"{stub.base_url}/healthz", timeout=1.0)
                if status == 200:
                    return stub
            except OSError:
                pass
            time.sleep(0.05)
        stub.stop()
        if attempt == 2 or "address already in use" not in stub.logs().lower():
            break
    raise ServerUnavailable(f"the stub did not serve board {board!r}:\n{stub.logs()[-1500:]}")


def _pg_exec(pg: Postgres, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(pg.url(database), autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def probe_postgres_board(pg: Postgres, workdir: Path) -> str | None:
    """None if the stub keeps its board in PostgreSQL (it serves a URL and its tables appear in that
    database); otherwise why not, in one line."""
    _pg_exec(pg, "DROP DATABASE IF EXISTS board_probe")
    _pg_exec(pg, "CREATE DATABASE board_probe")
    try:
        stub = start_board_stub(pg.url("board_probe"), workdir / "probe" / "stub.log", timeout=30)
    except ServerUnavailable as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        return (
            f"the stub does not serve a postgresql:// board yet ({lines[-1][:200] if lines else 'no output'})"
        )
    try:
        tables = _pg_exec(
            pg, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", "board_probe"
        )[0][0]
    finally:
        stub.stop()
        _pg_exec(pg, "DROP DATABASE IF EXISTS board_probe")
    if tables:
        return None
    return "the stub has no PostgreSQL board yet: it took the postgresql:// --db for a file path"


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Ours(System):
    coordinator = "the stub process"

    def __init__(self, workdir: Path, board: str, pg: Postgres | None = None) -> None:
        super().__init__(workdir)
        if board not in BOARDS:
            raise ValueError(f"board {board!r}: one of {', '.join(BOARDS)}")
        if board == "postgresql" and pg is None:
            raise ValueError("a postgresql board needs the bench's PostgreSQL server")
        self.board_kind = board
        self.pg = pg if board == "postgresql" else None
        self.key = f"pm-agent-{board}"
        self.label = f"PM Agent stub ({'SQLite' if board == 'sqlite' else 'PostgreSQL'})"
        if self.pg is not None:
            self.coordinator = "the stub process + the PostgreSQL server (every backend)"
        self.stub: BoardStub | None = None
        self.remote: RemoteBoard | None = None
        self._starts = 0
        self.received: dict[str, float] = {}
        self.completed: dict[str, float] = {}

    def _board(self) -> str:
        if self.pg is None:
            return str(self.here / "board.db")
        name = f"board_b{self.block}"
        _pg_exec(self.pg, f"DROP DATABASE IF EXISTS {name}")
        _pg_exec(self.pg, f"CREATE DATABASE {name}")
        return self.pg.url(name)

    async def open(self, block: int) -> None:
        await super().open(block)
        self.stub = start_board_stub(self._board(), self.here / "stub.log")
        self.remote = await RemoteBoard(self.stub.url, None).open()
        self._tail = Tail(self.here / "worker-logs", "*.log")
        self.received, self.completed = {}, {}

    async def close(self) -> None:
        if self.remote is not None:
            await self.remote.close()
            self.remote = None
        if self.stub is not None:
            self.stub.stop()
            self.stub = None
        if self.pg is not None:
            _pg_exec(self.pg, f"DROP DATABASE IF EXISTS board_b{self.block}")

    def coordinator_pids(self) -> list[int]:
        assert self.stub is not None
        return [self.stub.proc.pid, *([self.pg.pid] if self.pg is not None else [])]

    def start_workers(self, n: int) -> Workers:
        assert self.stub is not None
        self._starts += 1
        fleet = start_workers(self.stub, n, self.here, prefix=f"b{self.block}s{self._starts}-")
        return Workers(procs=fleet.procs, logs=fleet.log_paths)

    async def idle(self, n: int) -> bool:
        assert self.stub is not None
        try:
            status, health = http_get_json(f"{self.stub.base_url}/healthz", timeout=2.0)
        except OSError:
            return False
        return status == 200 and int(health.get("wakeups", {}).get("sleeping", 0)) >= n

    async def _load(self, ids: list[str], source: str) -> None:
        assert self.remote is not None
        text = json.dumps({"project": "peers", "tasks": step_tasks(ids, steps=0)})
        await self.remote.load_text(text, source)

    async def release(self, tag: str, m: int) -> None:
        await self._load([f"{tag}-{i}" for i in range(m)], f"peers {tag}")

    def _read_logs(self) -> None:
        for line in self._tail.lines():
            if '"task received"' not in line and '"task completed"' not in line:
                continue
            try:
                rec = json.loads(line)
                at = _epoch(rec["timestamp"])
            except (ValueError, KeyError):
                continue
            into = self.received if rec.get("event") == "task received" else self.completed
            into.setdefault(rec.get("task_id", ""), at)

    async def drained(self, tag: str, m: int) -> bool:
        self._read_logs()
        return sum(1 for t in self.completed if t.startswith(f"{tag}-")) >= m

    async def last_completed(self, tag: str, m: int) -> float | None:
        self._read_logs()
        times = [at for t, at in self.completed.items() if t.startswith(f"{tag}-")]
        return max(times) if times else None

    async def submit_stamped(self, key: str) -> None:
        await self._load([key], "peers pickup")

    def started(self) -> dict[str, float]:
        self._read_logs()
        return self.received
