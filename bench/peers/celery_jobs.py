"""The Celery worker's tasks: `celery -A bench.peers.celery_jobs worker --pool solo --concurrency 1`.

The worker stores every result in Redis (its result backend): that is how a Celery
coordinator knows a job finished, as our board, SAQ's job records and procrastinate's
job rows do. The bench's producer has no result backend (it never waits on a result), so
it does not subscribe to each task's result channel.
"""

from __future__ import annotations

import os

from celery import Celery

from bench.peers.stamps import record

QUEUE = "bench"

app = Celery(
    "bench_peers",
    broker=os.environ.get("BENCH_PEERS_REDIS_URL"),
    backend=os.environ.get("BENCH_PEERS_CELERY_RESULTS"),
)
app.conf.update(task_default_queue=QUEUE, broker_connection_retry_on_startup=True)


@app.task(name="noop")
def noop() -> None:
    return None


@app.task(name="stamp")
def stamp(key: str) -> None:
    record(key)
