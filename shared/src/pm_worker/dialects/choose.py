"""Which dialect a PM server speaks, and the dialect for a name (`PM_PROTOCOL`).

`PM_PROTOCOL=stub|marcus` names it; `auto` reads the server's `tools/list` once per
connection (`dialect_for_tools`). The stub has the extension tools `heartbeat` and
`release_task`; Marcus has neither, and has tools of its own (`log_decision`,
`create_project`). A server with neither signature is refused with the tool names it
offered, rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pm_worker.errors import SettingsError
from pm_worker.protocol_settings import DialectName

if TYPE_CHECKING:
    from pm_worker.dialects.base import Dialect
    from pm_worker.settings import WorkerSettings

STUB_SIGNATURE = frozenset({"heartbeat", "release_task"})
MARCUS_SIGNATURE = frozenset({"log_decision", "create_project"})
CORE = frozenset({"register_agent", "request_next_task", "report_task_progress", "report_blocker"})


class UnknownDialect(SettingsError):
    """The server is neither the stub nor Marcus; the message says what it offered and what to set."""


def dialect_for_tools(names: Iterable[str]) -> DialectName:
    tools = frozenset(names)
    missing = CORE - tools
    if missing:
        raise UnknownDialect(
            f"the server lacks the PM Agent tools {sorted(missing)} (it offers {sorted(tools)}); "
            "is PM_AGENT_URL a PM Agent?"
        )
    if tools >= STUB_SIGNATURE:
        return "stub"
    if not (STUB_SIGNATURE & tools) and MARCUS_SIGNATURE & tools:
        return "marcus"
    raise UnknownDialect(
        f"cannot tell the dialect from the tools {sorted(tools)}; set PM_PROTOCOL=stub or PM_PROTOCOL=marcus"
    )


def make_dialect(name: DialectName, settings: WorkerSettings) -> Dialect:
    """A fresh dialect for `name` (one per `PMClient`: a dialect may keep state)."""
    if name == "marcus":
        from pm_worker.dialects.marcus import MarcusDialect

        return MarcusDialect.from_settings(settings)
    from pm_worker.dialects.stub import StubDialect

    return StubDialect()
