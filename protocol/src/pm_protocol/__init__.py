"""pm_protocol: the PM Agent wire contract in one place (docs/protocol.md).

The stub validates calls with `pm_protocol.args` and answers with `pm_protocol.results`;
`pm_worker` builds its calls from the same argument models and reads the same result
models. Like the MCP SDK's separate `mcp-types`, it depends on nothing but pydantic, so
either end can import it without the other.

    from pm_protocol import TOOLS_BY_NAME, args, results
    tool = TOOLS_BY_NAME["request_next_task"]
    offer = tool.result.model_validate(answer)   # a results.TaskOffer
"""

from __future__ import annotations

from pm_protocol import args, limits, results
from pm_protocol.errors import ERROR_CODES, ErrorCode, ErrorResult
from pm_protocol.tools import TOOLS, TOOLS_BY_NAME, Tool

__all__ = [
    "ERROR_CODES",
    "TOOLS",
    "TOOLS_BY_NAME",
    "ErrorCode",
    "ErrorResult",
    "Tool",
    "args",
    "limits",
    "results",
]
