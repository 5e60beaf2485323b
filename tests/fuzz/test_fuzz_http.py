"""Malformed HTTP and MCP traffic at the real stub: refused with a 4xx, never a 5xx, never a hang.

Bodies that are not a JSON-RPC message (bad JSON, wrong shapes, wrong content types, no or
wrong Accept, oversized, truncated) get a 4xx. A well-formed JSON-RPC request naming an
unknown method or carrying bad params gets what JSON-RPC prescribes: a JSON-RPC error
object (code -326xx), which MCP's streamable HTTP sends with status 200. Every request has
a timeout; after all of it the stub still answers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx2
import pytest

from pm_agent_stub.http_app import MAX_REQUEST_BODY_BYTES
from pm_agent_stub.testing import StubProcess, http_get_json
from tests.reliability.boardcheck import dump
from tests.reliability.rpc import HEADERS, call_tool, strict_json, tool_body

TIMEOUT = httpx2.Timeout(10.0, connect=5.0)
PING = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "ping", "arguments": {"echo": "x"}},
}
OVERSIZED = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{"echo":"'
    + (b"x" * (MAX_REQUEST_BODY_BYTES + 10))
    + b'"}}}'
)

# name -> (method, headers, body)
REFUSED: dict[str, tuple[str, dict[str, str], bytes | None]] = {
    "bad json": ("POST", HEADERS, b'{"jsonrpc": "2.0", "id": 1, "method": '),
    "empty body": ("POST", HEADERS, b""),
    "not utf-8": ("POST", HEADERS, b"\xff\xfe\x00\x01"),
    "json array": ("POST", HEADERS, b"[]"),
    "batch": ("POST", HEADERS, json.dumps([PING, PING]).encode()),
    "json number": ("POST", HEADERS, b"42"),
    "json string": ("POST", HEADERS, b'"tools/call"'),
    "json null": ("POST", HEADERS, b"null"),
    "no jsonrpc field": ("POST", HEADERS, b'{"id": 1, "method": "tools/list"}'),
    "jsonrpc 1.0": ("POST", HEADERS, b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}'),
    "method not a string": ("POST", HEADERS, b'{"jsonrpc": "2.0", "id": 1, "method": 7}'),
    "deep nesting": ("POST", HEADERS, b"[" * 100_000 + b"]" * 100_000),
    "text/plain": ("POST", {**HEADERS, "content-type": "text/plain"}, json.dumps(PING).encode()),
    "form content type": (
        "POST",
        {**HEADERS, "content-type": "application/x-www-form-urlencoded"},
        b"jsonrpc=2.0&method=tools/list",
    ),
    "accept text/html only": ("POST", {**HEADERS, "accept": "text/html"}, json.dumps(PING).encode()),
    "oversized body": ("POST", HEADERS, OVERSIZED),
    "GET": ("GET", {"accept": "application/json"}, None),
    "GET event stream": ("GET", {"accept": "text/event-stream"}, None),
    "GET any": ("GET", {"accept": "*/*"}, None),
    "DELETE": ("DELETE", HEADERS, None),
    "PUT": ("PUT", HEADERS, json.dumps(PING).encode()),
    "PATCH": ("PATCH", HEADERS, json.dumps(PING).encode()),
}

# Well-formed JSON-RPC requests the server must answer with a JSON-RPC error object.
RPC_ERRORS: dict[str, dict[str, object]] = {
    "unknown method": {"jsonrpc": "2.0", "id": 1, "method": "tasks/steal"},
    "tools/call without params": {"jsonrpc": "2.0", "id": 2, "method": "tools/call"},
    "tool name not a string": {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}},
    "arguments a list": {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "ping", "arguments": [1, 2]},
    },
    "arguments a string": {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "register_agent", "arguments": "agent_id=x"},
    },
    "initialize without params": {"jsonrpc": "2.0", "id": 6, "method": "initialize", "params": {}},
}


@pytest.fixture(scope="module")
def http(fuzz_stub: StubProcess) -> httpx2.Client:
    with httpx2.Client(timeout=TIMEOUT) as client:
        yield client


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_malformed_request_is_refused_with_a_4xx(
    fuzz_stub: StubProcess, http: httpx2.Client, case: str
) -> None:
    method, headers, body = REFUSED[case]
    before = dump(fuzz_stub.db)["events"]
    started = time.monotonic()
    response = http.request(method, fuzz_stub.url, headers=headers, content=body)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:300])
    assert time.monotonic() - started < 10
    assert dump(fuzz_stub.db)["events"] == before, "a refused request changed the board"


def test_get_is_405_and_never_an_endless_event_stream(fuzz_stub: StubProcess, http: httpx2.Client) -> None:
    """A GET that accepts event streams must not open one that never ends (it used to)."""
    response = http.get(fuzz_stub.url, headers={"accept": "text/event-stream"}, timeout=httpx2.Timeout(5.0))
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"
    assert strict_json(response.text)["error"]["code"] == -32600


@pytest.mark.parametrize("case", sorted(RPC_ERRORS))
def test_bad_jsonrpc_request_gets_a_jsonrpc_error(
    fuzz_stub: StubProcess, http: httpx2.Client, case: str
) -> None:
    request = RPC_ERRORS[case]
    response = http.post(fuzz_stub.url, headers=HEADERS, content=json.dumps(request).encode())
    assert response.status_code < 500, (case, response.status_code)
    envelope = strict_json(response.text)
    assert envelope["id"] in (request["id"], None)
    assert -32700 <= envelope["error"]["code"] <= -32600, envelope
    assert "result" not in envelope


def test_notification_and_invalid_id_do_nothing(fuzz_stub: StubProcess, http: httpx2.Client) -> None:
    """Messages without a usable id are notifications to the SDK: 202, no body, nothing run."""
    before = dump(fuzz_stub.db)
    for message in (
        {"jsonrpc": "2.0", "method": "notifications/whatever"},
        {
            "jsonrpc": "2.0",
            "id": {"an": "object"},
            "method": "tools/call",
            "params": {
                "name": "register_agent",
                "arguments": {"agent_id": "via-bad-id", "name": "n", "role": "r", "skills": []},
            },
        },
    ):
        response = http.post(fuzz_stub.url, headers=HEADERS, content=json.dumps(message).encode())
        assert response.status_code in (202, 400), response.status_code
        assert response.status_code == 400 or response.content == b""
    assert dump(fuzz_stub.db)["agents"] == before["agents"]


def _raw(stub: StubProcess, data: bytes, *, shut_write: bool = False, timeout: float = 10.0) -> bytes:
    """Send raw bytes; return all the server sends until it closes (socket.timeout = a hang)."""
    with socket.create_connection(("127.0.0.1", stub.port), timeout=timeout) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)  # may be refused before we finish sending: read what it said
        if shut_write:
            sock.shutdown(socket.SHUT_WR)  # the client gives up: the server may just close
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _status(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


def _request(body: bytes, headers: dict[str, str]) -> bytes:
    lines = [b"POST /mcp HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def test_raw_socket_garbage(fuzz_stub: StubProcess) -> None:
    body = json.dumps(PING).encode()
    cases = {
        "no accept header": _request(
            body, {"Content-Type": "application/json", "Content-Length": str(len(body))}
        ),
        "no content-type": _request(body, {"Accept": "application/json", "Content-Length": str(len(body))}),
        "truncated body": _request(
            body[:10],
            {"Content-Type": "application/json", "Accept": "application/json", "Content-Length": "500"},
        ),
        "chunked oversized": b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(
            b"%x\r\n%s\r\n" % (65536, b"x" * 65536) for _ in range(MAX_REQUEST_BODY_BYTES // 65536 + 2)
        )
        + b"0\r\n\r\n",
        "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
        "bad header": b"POST /mcp HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
        "huge header": b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        "bad content-length": _request(body, {"Content-Type": "application/json", "Content-Length": "-5"}),
    }
    outcomes = {}
    for name, data in cases.items():
        try:
            raw = _raw(fuzz_stub, data, shut_write=name == "truncated body")
        except (ConnectionResetError, BrokenPipeError):
            raw = b""  # the server hung up on garbage: fine, as long as it lives
        status = _status(raw)
        outcomes[name] = status
        assert status is None or 400 <= status < 500, (name, raw[:300])
    # The ones that are still HTTP must get a real 4xx, not a silent close.
    for name in ("no accept header", "no content-type", "chunked oversized", "bad content-length"):
        assert outcomes[name] is not None, (name, outcomes)
    assert fuzz_stub.alive()


def test_half_sent_request_does_not_block_others(fuzz_stub: StubProcess, http: httpx2.Client) -> None:
    """A client that sends half a request and stalls must not stop the stub serving others."""
    with socket.create_connection(("127.0.0.1", fuzz_stub.port), timeout=10) as stalled:
        stalled.sendall(b'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":')
        answer = call_tool(http, fuzz_stub.url, "ping", {"echo": "still here"})
        assert answer["echo"] == "still here"


def test_stub_alive_after_all_of_it(fuzz_stub: StubProcess, http: httpx2.Client) -> None:
    status, body = http_get_json(f"{fuzz_stub.base_url}/healthz", timeout=10)
    assert status == 200, body
    response = http.post(fuzz_stub.url, headers=HEADERS, content=tool_body("ping", {"echo": "ok"}))
    assert response.status_code == 200
    assert fuzz_stub.alive()
