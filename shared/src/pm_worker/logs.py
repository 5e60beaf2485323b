"""structlog set-up: JSON off a TTY (containers), console on a TTY; context vars first.

`agent_id` is bound once per process and `task_id` per task with
`structlog.contextvars`, so every line says who and what without passing loggers around.
The worker's secrets are redacted from every line, as from every report (`pm_worker.outgoing`):
a blocker's text logged as it is sent may hold a task's output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog

from pm_worker.outgoing import Outgoing

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _redacting(secrets: Iterable[str | None]) -> structlog.typing.Processor:
    outgoing = Outgoing(secrets)

    def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = outgoing.redact(value)
        return event

    return redact


def configure_logging(
    fmt: Literal["json", "console"] | None = None, level: str = "info", secrets: Iterable[str | None] = ()
) -> None:
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            _redacting(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # The MCP SDK and httpx log through stdlib logging; keep their chatter at warning.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("mcp", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
