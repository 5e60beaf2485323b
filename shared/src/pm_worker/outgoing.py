"""What a worker sends, made sendable: fitted to the protocol's limits, with its secrets taken out.

Reports carry text from foreign sources (a test's output, an exception, a build log), and a
report the server refuses is worse than a short one: the worker keeps the lease, asks again,
is handed the same task and runs it again. So every free-text field and every JSON value
`PMClient` sends passes through one `Outgoing` first:

- text longer than its limit (`pm_protocol.limits`: MAX_TEXT, MAX_NAME) keeps its head and
  its tail, with a marker in between that says how much was cut;
- JSON larger than MAX_JSON_BYTES, or not JSON at all (NaN, a Python object), is replaced by
  a small stand-in object that says what was not sent and why;
- the worker's secrets (the stub's token) are replaced by "[redacted]" wherever they occur,
  before cutting, so a cut cannot leave half a token behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import JsonValue

from pm_protocol.limits import MAX_JSON_BYTES, MAX_TEXT, json_size
from pm_worker.clip import clip

REDACTED = "[redacted]"


def fit_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` if it fits, else its head and tail around a marker saying how much was cut."""
    return clip(text, limit, keep="both")


def stand_in(what: str, reason: str) -> dict[str, JsonValue]:
    """What is sent instead of a JSON value that cannot be: small, and saying so."""
    return {"omitted": f"{what} was not sent: {reason}"}


def fit_json(value: Any, what: str, limit: int = MAX_JSON_BYTES) -> JsonValue:
    """`value` if it is JSON within `limit` bytes, else a `stand_in` naming the problem."""
    try:
        size = json_size(value)
    except ValueError as exc:  # NaN or Infinity
        return stand_in(what, str(exc))
    except TypeError as exc:  # not JSON at all (a Path, a datetime, a set ...)
        return stand_in(what, f"it is not JSON ({exc}); send strings, numbers, lists and objects")
    if size > limit:
        return stand_in(
            what,
            f"{size:,} bytes of JSON is more than the {limit:,} the protocol allows; "
            "store big data in the workspace and send its location",
        )
    result: JsonValue = value
    return result


class Outgoing:
    """Fits and redacts everything one worker sends (see the module docstring)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _redact_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {
                self.redact(k) if isinstance(k, str) else k: self._redact_json(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._redact_json(v) for v in value]
        return value

    def text(self, value: str, limit: int = MAX_TEXT) -> str:
        return fit_text(self.redact(value), limit)

    def optional_text(self, value: str | None, limit: int = MAX_TEXT) -> str | None:
        return None if value is None else self.text(value, limit)

    def json(self, value: Any, what: str) -> JsonValue:
        return fit_json(self._redact_json(value) if self._secrets else value, what)
