"""A tool's answer on the wire, built in one place and read back in one place.

A success is its result model's JSON object twice: as `structured_content`, which the tool's
advertised `outputSchema` (its result model's JSON schema) describes and MCP clients
validate, and as the text of `content[0]`, for clients that read text (the upstream
tutorial's `json.loads(result.content[0].text)`).

A failure sets `is_error` and carries the `ErrorResult` object (`{"success": false, "error":
code, "message": ...}`) as text only. The MCP spec describes `structuredContent` as the
tool's result conforming to `outputSchema`, which an error is not, and the official
TypeScript SDK's client checks any `structuredContent` it gets against `outputSchema`, error
or not (modelcontextprotocol/typescript-sdk#1943): an error object there would reach such a
client as a schema violation (-32602) instead of the stub's message. Text-only errors are
read the same by every client; `answer_object` reads either kind back.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as mcp_types

from pm_protocol.errors import ErrorCode, ErrorResult
from pm_protocol.limits import dumps


def success(obj: dict[str, Any]) -> mcp_types.CallToolResult:
    """A result model's JSON object as the tool's answer: structured, and the same JSON as text."""
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=dumps(obj))], structured_content=obj
    )


def failure(code: ErrorCode, message: str) -> mcp_types.CallToolResult:
    """The protocol's error object as an error answer (`is_error`, text only)."""
    obj = ErrorResult(error=code, message=message).model_dump(mode="json")
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=dumps(obj))], is_error=True
    )


def answer_object(result: mcp_types.CallToolResult) -> dict[str, Any] | None:
    """The JSON object a tool answered (success or error), or None if it sent none."""
    if isinstance(result.structured_content, dict):
        return result.structured_content
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            try:
                value = json.loads(block.text)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None
