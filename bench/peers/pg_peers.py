"""procrastinate on the bench's PostgreSQL (fsync on): the peer with our durability.

Each worker is one process with `--concurrency 1`, listening for new jobs (LISTEN/NOTIFY,
procrastinate's default). Gate: every worker registered (procrastinate_workers) and
as many connections parked in LISTEN. Jobs go in with one `batch_defer` (one transaction);
completion times are procrastinate's own `succeeded` events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.peers.base import PYTHON, StampedPeer, Workers, spawn
from bench.peers.servers import Postgres

QUEUE = "bench"
DATABASE = "procrastinate"


def _app(url: str) -> Any:
    from procrastinate import App, PsycopgConnector

    return App(connector=PsycopgConnector(conninfo=url))


async def create_schema(pg: Postgres) -> None:
    """The database and procrastinate's schema, once per run."""
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    app = _app(pg.url(DATABASE))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


class Procrastinate(StampedPeer):
    key = "procrastinate"
    label = "procrastinate / PostgreSQL"
    coordinator = "the PostgreSQL server (every backend)"

    def __init__(self, workdir: Path, pg: Postgres) -> None:
        super().__init__(workdir)
        self.pg = pg
        self.url = pg.url(DATABASE)
        self._ids: dict[str, list[int]] = {}

    async def open(self, block: int) -> None:
        import psycopg

        await super().open(block)
        self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await self.conn.execute(
            "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs RESTART IDENTITY"
        )
        self.app = _app(self.url)
        await self.app.open_async()
        self._ids = {}

    async def close(self) -> None:
        await self.app.close_async()
        await self.conn.close()

    def coordinator_pids(self) -> list[int]:
        return [self.pg.pid]

    def start_workers(self, n: int) -> Workers:
        env = self.worker_env({"BENCH_PEERS_PG_URL": self.url})
        w = Workers()
        for _ in range(n):
            log = self.worker_log()
            argv = [
                PYTHON, "-m", "procrastinate", "--app", "bench.peers.procrastinate_jobs.app", "worker",
                "--concurrency", "1", "--queues", QUEUE, "--name", log.stem,
            ]  # fmt: skip
            w.procs.append(spawn(argv, env, log))
            w.logs.append(log)
        return w

    async def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        cur = await self.conn.execute(sql, params)
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def idle(self, n: int) -> bool:
        workers = await self._one("SELECT count(*) FROM procrastinate_workers")
        listening = await self._one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle' AND query ILIKE 'LISTEN%%'"
        )
        return int(workers) >= n and int(listening) >= n

    async def release(self, tag: str, m: int) -> None:
        deferrer = self.app.configure_task("noop", queue=QUEUE)
        self._ids[tag] = await deferrer.batch_defer_async(*({} for _ in range(m)))

    async def drained(self, tag: str, m: int) -> bool:
        return not await self._one(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
        )

    async def last_completed(self, tag: str, m: int) -> float | None:
        at = await self._one(
            "SELECT extract(epoch FROM max(at)) FROM procrastinate_events "
            "WHERE type = 'succeeded' AND job_id = ANY(%s)",
            (self._ids.get(tag, []),),
        )
        return None if at is None else float(at)

    async def submit_stamped(self, key: str) -> None:
        await self.app.configure_task("stamp", queue=QUEUE).defer_async(key=key)
