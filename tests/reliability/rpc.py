"""Raw MCP over HTTP: one JSON-RPC `tools/call` per POST, and a strict reading of the answer.

The MCP client library hides what is on the wire; these suites need to send malformed
things and to see exactly what came back (status, body, the two copies of the result).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import httpx2

from pm_agent_stub.errors import ERROR_CODES

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
TOOL_ERROR_CODES = frozenset(ERROR_CODES) - {"unauthorized", "internal_error"}
_ids = itertools.count(1)


def strict_json(text: str) -> Any:
    """JSON as the RFC has it: NaN/Infinity are not JSON and make this raise."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def tool_body(name: str, arguments: Any) -> bytes:
    """A `tools/call` request; `allow_nan` so NaN/Infinity can be sent on purpose."""
    request = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return json.dumps(request, allow_nan=True).encode()


def post(
    client: httpx2.Client, url: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return client.post(url, content=body, headers=headers or HEADERS)


def tool_answer(response: httpx2.Response) -> dict[str, Any]:
    """The tool's JSON object, after checking the contract's shape; raises AssertionError otherwise."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    envelope = strict_json(response.text)
    assert envelope.get("jsonrpc") == "2.0", response.text[:500]
    assert "result" in envelope, response.text[:500]
    result = envelope["result"]
    text = result["content"][0]["text"]
    obj = strict_json(text)
    assert isinstance(obj, dict), text[:500]
    assert bool(result.get("isError")) == (obj.get("success") is False), text[:500]
    if obj.get("success") is False:
        assert "structuredContent" not in result, ("an error is text only", result)
        assert set(obj) == {"success", "error", "message"}, obj
        assert obj["error"] in TOOL_ERROR_CODES, obj
        assert isinstance(obj["message"], str), obj
        assert obj["message"].strip(), obj
    else:
        assert obj.get("success") is True, obj
        assert result.get("structuredContent") == obj, ("text and structuredContent differ", text[:300])
    return obj


def call_tool(client: httpx2.Client, url: str, name: str, arguments: Any) -> dict[str, Any]:
    return tool_answer(post(client, url, tool_body(name, arguments)))


def has_lone_surrogate(value: Any) -> bool:
    """Text no UTF-8 encoder accepts ("\\ud800"): JSON parsers may refuse the whole body."""
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def is_parse_error(response: httpx2.Response) -> bool:
    """A 400 carrying a JSON-RPC parse error (-32700): the body was refused before any tool ran."""
    if response.status_code != 400:
        return False
    envelope = strict_json(response.text)
    return envelope.get("error", {}).get("code") == -32700


def has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False
