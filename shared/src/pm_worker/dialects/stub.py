"""The PM Agent stub's dialect: the contract as it is, so every call is `pm_protocol.call`.

The stub speaks `pm_protocol` exactly (arguments checked by their models, answers read as the
tool's result model, error answers `ErrorResult`s), and answers upstream's tools with
upstream's shapes, so this dialect also serves a worker written from the upstream tutorial.
All it adds is pm_worker's error types.
"""

from __future__ import annotations

from typing import Any

from pm_protocol import UnexpectedAnswer, call
from pm_protocol.errors import refusal
from pm_protocol.tools import A, R, Tool
from pm_worker.dialects.base import Send
from pm_worker.errors import PMError, TransportError, error_for


class StubDialect:
    """Tools, arguments and answers exactly as docs/protocol.md and `pm_protocol` define them."""

    name = "stub"

    def error(self, tool: str, answer: dict[str, Any]) -> PMError:
        refused = refusal(tool, answer)
        return error_for(refused.code, refused.message, tool=tool)

    async def call(
        self, send: Send, tool: Tool[A, R], args: A | dict[str, Any], *, extra_timeout: float = 0.0
    ) -> R:
        try:
            return await call(send, tool, args, extra_timeout=extra_timeout)
        except UnexpectedAnswer as exc:
            raise TransportError(f"{exc}; is PM_AGENT_URL a PM Agent stub?") from None


__all__ = ["StubDialect"]
