"""The reconnect policy: jittered exponential backoff, capped, with a stop condition.

Many replicas hit one stub after it restarts, so waits are randomised
(`wait_random_exponential`) to avoid a thundering herd. Only transport failures are
retried; a tool error is an answer, not a failure.
"""

from __future__ import annotations

from typing import Any

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from pm_worker.errors import TransportError

log = structlog.get_logger("pm_worker.reconnect")


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "stub_unreachable_retrying",
        attempt=state.attempt_number,
        wait_seconds=round(wait, 2),
        error=str(exc),
    )


def reconnect_policy(
    give_up_seconds: float, max_wait: float = 10.0, multiplier: float = 0.25, **overrides: Any
) -> AsyncRetrying:
    kwargs: dict[str, Any] = {
        "retry": retry_if_exception_type(TransportError),
        "stop": stop_after_delay(give_up_seconds),
        "wait": wait_random_exponential(multiplier=multiplier, max=max_wait),
        "before_sleep": _log_retry,
        "reraise": True,
    }
    kwargs.update(overrides)
    return AsyncRetrying(**kwargs)
