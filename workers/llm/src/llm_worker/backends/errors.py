"""What can go wrong talking to a model, whichever provider is behind.

    ModelError              the endpoint refused the call; retrying cannot fix it (400, 401, 404, ...)
    └── RetryableModelError 429, 5xx, unreachable, or no full answer within LLM_TIMEOUT_SECONDS
    StartupError            the model cannot be used at all (the one line the operator sees)
    └── EndpointUnreachable nothing answered at start: it may still be starting up

Kept apart from the providers and from the retry policy, so each of them imports this
module and none imports another: no circle.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping


class ModelError(Exception):
    """The model endpoint refused the call in a way retrying cannot fix (400, 401, 404, ...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableModelError(ModelError):
    """429, 5xx, or the endpoint could not be reached: worth another try after `retry_after`."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class StartupError(Exception):
    """The model cannot be used at all; the message is the one line the operator sees."""


class EndpointUnreachable(StartupError):
    """Nothing answered at the endpoint (connection refused, DNS, timeout): may be starting up."""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, `retry-after` (seconds or an HTTP date); None if absent/bad."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def status_error(status: int, detail: str, headers: Mapping[str, str]) -> ModelError:
    """The error for an HTTP error answer: 429 and 5xx are retryable (after `retry-after`), the rest not."""
    if status == 429 or status >= 500:
        return RetryableModelError(
            f"HTTP {status}: {detail}", status=status, retry_after=parse_retry_after(headers)
        )
    return ModelError(f"HTTP {status}: {detail}", status=status)
