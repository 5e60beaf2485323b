"""The stub's own HTTP refusals, as JSON-RPC error envelopes.

An MCP client shows an envelope's `message` to its user; a bare body becomes "Server
returned an error response". Every refusal the stub makes before the MCP SDK sees a
request (401, 405, 408, 413, 503) goes through here.
"""

from __future__ import annotations

import json

from starlette.types import Send


def error_body(code: int, message: str, data: dict[str, object] | None = None) -> bytes:
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    *,
    data: dict[str, object] | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """One complete response: status, JSON-RPC error envelope, extra headers."""
    body = error_body(code, message, data)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
