"""SAQ and Celery, each worker one process with concurrency 1, on the bench's redis-server.

Gate: Redis's own client list, counting the connections blocked in the dequeue command
(SAQ: BLMOVE, Celery/kombu: BRPOP): a worker there is connected and waiting for work.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.peers.base import PYTHON, StampedPeer, Workers, spawn
from bench.peers.servers import Redis

QUEUE = "bench"


def blocked_in(client: Any, commands: set[str]) -> int:
    """Connections blocked right now in one of `commands`."""
    return sum(1 for c in client.client_list() if c.get("cmd") in commands and "b" in str(c.get("flags", "")))


class Saq(StampedPeer):
    key = "saq"
    label = "SAQ / Redis"
    coordinator = "redis-server"

    def __init__(self, workdir: Path, redis: Redis) -> None:
        super().__init__(workdir)
        self.redis = redis

    async def open(self, block: int) -> None:
        import redis as redis_py
        from saq import Queue

        await super().open(block)
        self.admin = redis_py.Redis.from_url(self.redis.url())
        self.admin.flushall()
        self.queue = Queue.from_url(self.redis.url(), name=QUEUE)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()
        self.admin.close()

    def coordinator_pids(self) -> list[int]:
        return [self.redis.pid]

    def start_workers(self, n: int) -> Workers:
        env = self.worker_env({"BENCH_PEERS_REDIS_URL": self.redis.url()})
        w = Workers()
        for _ in range(n):
            log = self.worker_log()
            w.procs.append(spawn([PYTHON, "-m", "saq", "bench.peers.saq_jobs.settings"], env, log))
            w.logs.append(log)
        return w

    async def idle(self, n: int) -> bool:
        return blocked_in(self.admin, {"blmove", "brpoplpush"}) >= n

    async def release(self, tag: str, m: int) -> None:
        await asyncio.gather(*(self.queue.enqueue("noop", key=f"{tag}-{i}") for i in range(m)))

    async def drained(self, tag: str, m: int) -> bool:
        return await self.queue.count("incomplete") == 0

    async def last_completed(self, tag: str, m: int) -> float | None:
        jobs = await self.queue.jobs([f"{tag}-{i}" for i in range(m)])
        done = [j.completed for j in jobs if j is not None and j.completed]
        return max(done) / 1000.0 if done else None

    async def submit_stamped(self, key: str) -> None:
        await self.queue.enqueue("stamp", key=key)


class CeleryPeer(StampedPeer):
    key = "celery"
    label = "Celery / Redis"
    coordinator = "redis-server"

    def __init__(self, workdir: Path, redis: Redis) -> None:
        super().__init__(workdir)
        self.redis = redis
        self._baseline = 0

    async def open(self, block: int) -> None:
        import redis as redis_py
        from celery import Celery

        await super().open(block)
        self.admin = redis_py.Redis.from_url(self.redis.url(0))
        self.results = redis_py.Redis.from_url(self.redis.url(1))
        self.admin.flushall()
        # The producer: broker only (no result backend, so no per-task result subscription).
        self.app = Celery("bench_peers_producer", broker=self.redis.url(0))
        self.app.conf.update(broker_connection_retry_on_startup=True, task_default_queue=QUEUE)

    async def close(self) -> None:
        self.app.close()
        self.admin.close()
        self.results.close()

    def coordinator_pids(self) -> list[int]:
        return [self.redis.pid]

    def start_workers(self, n: int) -> Workers:
        env = self.worker_env(
            {"BENCH_PEERS_REDIS_URL": self.redis.url(0), "BENCH_PEERS_CELERY_RESULTS": self.redis.url(1)}
        )
        w = Workers()
        for _ in range(n):
            log = self.worker_log()
            name = f"{log.stem}@peers{self.block}"
            argv = [
                PYTHON, "-m", "celery", "-A", "bench.peers.celery_jobs", "worker", "--pool", "solo",
                "--concurrency", "1", "-Q", QUEUE, "-n", name, "--without-mingle", "--loglevel", "WARNING",
            ]  # fmt: skip
            w.procs.append(spawn(argv, env, log))
            w.logs.append(log)
        return w

    async def idle(self, n: int) -> bool:
        return blocked_in(self.admin, {"brpop"}) >= n

    async def release(self, tag: str, m: int) -> None:
        self._baseline = int(self.results.dbsize())
        with self.app.producer_or_acquire() as producer:
            for i in range(m):
                self.app.send_task("noop", task_id=f"{tag}-{i}", queue=QUEUE, producer=producer)

    async def drained(self, tag: str, m: int) -> bool:
        return int(self.results.dbsize()) >= self._baseline + m

    async def last_completed(self, tag: str, m: int) -> float | None:
        keys = [f"celery-task-meta-{tag}-{i}" for i in range(m)]
        done: list[float] = []
        for lo in range(0, len(keys), 1000):
            for raw in self.results.mget(keys[lo : lo + 1000]):
                if raw:
                    stamp = json.loads(raw).get("date_done")
                    if stamp:
                        done.append(datetime.fromisoformat(stamp).timestamp())
        return max(done) if done else None

    async def submit_stamped(self, key: str) -> None:
        self.app.send_task("stamp", args=[key], task_id=key, queue=QUEUE)
