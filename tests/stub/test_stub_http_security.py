"""HTTP edges: bearer token, Host allow-list, body cap, /healthz, the exact /mcp path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

from pm_agent_stub.testing import StubProcess, call_tool, http_get_json, start_stub

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-for-tests"
PING = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping", "arguments": {}}}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


@pytest.fixture(scope="module")
def token_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    proc = start_stub(
        tmp_path_factory.mktemp("token") / "board.db",
        env={"PM_AGENT_TOKEN": TOKEN, "PM_AGENT_ALLOWED_HOSTS": "board.example.org"},
    )
    yield proc
    proc.stop()


async def post(url: str, headers: dict[str, str], body: Any = PING) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as client:
        return await client.post(url, headers={**HEADERS, **headers}, content=json.dumps(body))


async def test_token_required_on_mcp_but_not_on_healthz(token_stub: StubProcess) -> None:
    missing = await post(token_stub.url, {})
    wrong = await post(token_stub.url, {"authorization": "Bearer nope"})
    for resp in (missing, wrong):
        assert resp.status_code == 401
        error = resp.json()["error"]  # a JSON-RPC error envelope carrying the protocol's error object
        assert error["message"].startswith("unauthorized")
        assert "PM_AGENT_TOKEN" in error["message"]
        assert error["data"]["error"] == "unauthorized"
        assert error["data"]["success"] is False
    right = await post(token_stub.url, {"authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    assert json.loads(right.json()["result"]["content"][0]["text"])["pong"] is True
    status, body = http_get_json(f"{token_stub.base_url}/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert TOKEN not in token_stub.logs()


async def test_mcp_client_with_token_header(token_stub: StubProcess) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        mcp.Client(streamable_http_client(token_stub.url, http_client=http)) as c,
    ):
        assert (await call_tool(c, "ping", {"echo": "x"}))["echo"] == "x"


@pytest.mark.parametrize(
    ("host", "expected"),
    [("pm-agent:8000", 200), ("pm-agent", 200), ("localhost:1234", 200), ("board.example.org", 200),
     ("board.example.org:9000", 200), ("evil.example.com:8000", 421)],
)  # fmt: skip
async def test_host_allow_list(token_stub: StubProcess, host: str, expected: int) -> None:
    resp = await post(token_stub.url, {"host": host, "authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == expected, resp.text


async def test_oversized_body_is_refused(stub: StubProcess) -> None:
    big = {**PING, "params": {"name": "ping", "arguments": {"echo": "x" * (2 * 1024 * 1024)}}}
    resp = await post(stub.url, {}, big)
    assert resp.status_code == 413


async def test_healthz_reports_status_and_counters_but_no_path(stub: StubProcess) -> None:
    status, body = http_get_json(f"{stub.base_url}/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["db"] == "board.db"  # the file's name: which board, without the server's layout
    assert str(stub.db.parent) not in json.dumps(body)
    assert body["uptime_seconds"] >= 0
    assert isinstance(body["assignment"]["transactions"], int)
    assert isinstance(body["wakeups"]["wakeups"], int)
    assert body["board_thread"]["queued"] >= 0


@pytest.mark.parametrize(
    ("host", "expected"),
    [(None, 200), ("127.0.0.1:8000", 200), ("localhost", 200), ("pm-agent:8000", 200), ("board.example.org", 200),
     ("evil.example.com:8000", 421), ("pm-agent.evil.example.com", 421)],
)  # fmt: skip
async def test_healthz_applies_the_host_allow_list_without_a_token(
    token_stub: StubProcess, host: str | None, expected: int
) -> None:
    """A DNS-rebound page must not read /healthz either; the healthchecks' 127.0.0.1/localhost pass."""
    async with httpx2.AsyncClient(timeout=10) as client:
        resp = await client.get(f"{token_stub.base_url}/healthz", headers={"host": host} if host else {})
    assert resp.status_code == expected, resp.text
    if expected == 200:
        assert resp.json()["status"] == "ok"


async def test_star_turns_the_host_check_off(stub_factory: Any) -> None:
    open_stub = stub_factory(env={"PM_AGENT_ALLOWED_HOSTS": "*"})
    assert (await post(open_stub.url, {"host": "anything.example:1"})).status_code == 200
