"""`reap`: a task of ours ended without swallowing a cancellation aimed at us."""

from __future__ import annotations

import asyncio

import pytest

from pm_worker.aio import reap


async def test_reap_ends_the_task_and_drops_what_it_ended_with() -> None:
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            raise RuntimeError("cleanup failed")

    task = asyncio.ensure_future(fails_when_cancelled())
    await asyncio.sleep(0)
    await reap(task)
    assert task.done()


async def test_a_cancellation_of_the_caller_is_raised_after_the_task_ended() -> None:
    ended = asyncio.Event()
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await release.wait()  # cleanup that takes a while
            ended.set()

    inner = asyncio.ensure_future(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.ensure_future(reap(inner))
    await asyncio.sleep(0)
    outer.cancel()  # a shutdown lands while we wait for the task to end
    await asyncio.sleep(0)
    assert not outer.done()  # it still waits for the task ...
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer  # ... and then goes on being cancelled, not swallowing it
    assert ended.is_set()
