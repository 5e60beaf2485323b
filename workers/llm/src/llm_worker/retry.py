"""Retrying model calls: 429 and 5xx (and unreachable endpoints), honouring `retry-after`.

tenacity with every guard the style guide asks for: a stop condition (attempts and total
time), only `RetryableModelError` retried, waits capped, each retry logged with what is
left, and the last error re-raised.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from llm_worker.backends.errors import RetryableModelError
from llm_worker.settings import LLMSettings

log = structlog.get_logger("llm_worker.retry")

T = TypeVar("T")


class WaitRetryAfter:
    """The server's `retry-after` when it gave one, else jittered exponential backoff; both capped."""

    def __init__(self, cap: float, base: float = 1.0) -> None:
        self.cap = cap
        self.base = base

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableModelError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        ceiling = min(self.cap, self.base * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)


def retrying(settings: LLMSettings) -> AsyncRetrying:
    attempts = settings.llm_retry_attempts

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "model_call_retrying",
            error=str(exc),
            status=getattr(exc, "status", None),
            wait_seconds=round(wait, 2),
            retries_remaining=attempts - state.attempt_number,
        )

    return AsyncRetrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(settings.llm_retry_total_seconds),
        wait=WaitRetryAfter(settings.llm_retry_max_wait_seconds),
        retry=retry_if_exception_type(RetryableModelError),
        before_sleep=before_sleep,
        reraise=True,
    )


async def call_with_retries(settings: LLMSettings, call: Callable[[], Awaitable[T]]) -> T:
    async for attempt in retrying(settings):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
