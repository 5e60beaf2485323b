"""The one test double left: a wrapper around a real connection to the in-memory stub.

Everything else in these suites runs against the real stub (`pm_worker.testing`). What
the real server cannot do on request is drop one client's link on its Nth call, or let a
test act between two calls; `Recorder` does that, and counts connects and calls, around a
real `Connection` whose every call still reaches the real stub.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pm_worker.connection import Reply, ToolConnection
from pm_worker.errors import TransportError
from pm_worker.settings import WorkerSettings


@dataclass
class Recorder:
    real: Callable[[WorkerSettings], ToolConnection]
    fail_calls: set[int] = field(default_factory=set)  # call numbers (1-based) that lose the connection
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connects: int = 0
    after_call: Callable[[str, dict[str, Any]], None] | None = None

    def connection(self, settings: WorkerSettings) -> ToolConnection:
        return RecordedConnection(self, self.real(settings))

    def tool_names(self) -> list[str]:
        return [name for name, _ in self.calls]


class RecordedConnection:
    def __init__(self, recorder: Recorder, inner: ToolConnection) -> None:
        self.recorder = recorder
        self.inner = inner

    @property
    def alive(self) -> bool:
        return self.inner.alive

    async def open(self) -> None:
        self.recorder.connects += 1
        await self.inner.open()

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Reply:
        rec = self.recorder
        rec.calls.append((name, dict(arguments)))
        if len(rec.calls) in rec.fail_calls:
            await self.inner.close()
            raise TransportError(f"{name}: connection lost (injected)")
        reply = await self.inner.call(name, arguments, timeout)
        if rec.after_call is not None:
            rec.after_call(name, arguments)
        return reply

    async def tool_names(self, timeout: float) -> list[str]:
        return await self.inner.tool_names(timeout)

    async def close(self) -> None:
        await self.inner.close()
