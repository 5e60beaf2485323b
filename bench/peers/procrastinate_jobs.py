"""The procrastinate worker's tasks:
`procrastinate --app bench.peers.procrastinate_jobs.app worker --concurrency 1 --queues bench`."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench.peers.stamps import record

QUEUE = "bench"

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PEERS_PG_URL", "")))


@app.task(name="noop", queue=QUEUE)
async def noop() -> None:
    return None


@app.task(name="stamp", queue=QUEUE)
async def stamp(key: str) -> None:
    record(key)
