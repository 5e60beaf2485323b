"""pm_protocol: the PM Agent wire contract in one place (docs/protocol.md).

The stub validates calls with `pm_protocol.args` and answers with `pm_protocol.results`;
`pm_worker`, the operator CLI and the test kits make their calls with `calls.call`, which
checks the arguments and reads the answer with the same models. Like the MCP SDK's separate
`mcp-types`, it depends on nothing but pydantic, so either end can import it without the other.

    from pm_protocol import call, tools
    offer = await call(send, tools.request_next_task, {"agent_id": "w1"})   # a results.TaskOffer
"""

from __future__ import annotations

from pm_protocol import args, limits, results, tools
from pm_protocol.calls import Send, call
from pm_protocol.errors import (
    ERROR_CODES,
    CallError,
    ErrorCode,
    ErrorResult,
    InvalidCall,
    Refused,
    UnexpectedAnswer,
)
from pm_protocol.tools import TOOLS, TOOLS_BY_NAME, Tool

__all__ = [
    "ERROR_CODES",
    "TOOLS",
    "TOOLS_BY_NAME",
    "CallError",
    "ErrorCode",
    "ErrorResult",
    "InvalidCall",
    "Refused",
    "Send",
    "Tool",
    "UnexpectedAnswer",
    "args",
    "call",
    "limits",
    "results",
    "tools",
]
