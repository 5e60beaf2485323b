"""The SAQ worker's jobs: `python -m saq bench.peers.saq_jobs.settings` (one process, concurrency 1)."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.peers.stamps import record

QUEUE = "bench"


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def stamp(ctx: dict[str, Any]) -> None:
    record(ctx["job"].key)


settings = {
    "queue": Queue.from_url(os.environ.get("BENCH_PEERS_REDIS_URL", "redis://127.0.0.1:6379"), name=QUEUE),
    "functions": [noop, stamp],
    "concurrency": 1,
}
