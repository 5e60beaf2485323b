"""A long-poll the client cancels leaves the queue at once and is handed nothing (issue 24 item 7).

The official TypeScript SDK ends a call at its own timeout by POSTing `notifications/cancelled`
and keeping the call's HTTP request open. The stub serves stateless HTTP, where the MCP Python
SDK cannot match the notification to the call (cancels.py); before, the stub kept counting the
waiter and handed it the next task, which then sat in progress until its lease lapsed and cost
an attempt. With that SDK against a real stub process (needs Node and the SDK beside the
script, `npm ci --prefix tests/stub/ts_client`; skipped without), and with the same two POSTs
sent by hand (what is matched: the id, from the same client).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2
import mcp
import pytest

from pm_agent_stub.cancels import CallCancels, call_key
from pm_agent_stub.testing import call_tool, http_get_json, load_tasks, read_events, task, wait_until
from tests.reliability.rpc import HEADERS, tool_answer
from tests.stub.test_stub_ts_client import CLIENT, node


def wakeups(stub: Any) -> dict[str, Any]:
    status, health = http_get_json(f"{stub.base_url}/healthz")
    assert status == 200, health
    found: dict[str, Any] = health["wakeups"]
    return found


def test_a_long_poll_the_typescript_sdk_cancels_is_handed_nothing(stub_factory: Any, tmp_path: Path) -> None:
    executable = node()
    stub = stub_factory()
    canceller = subprocess.Popen(
        [executable, str(CLIENT / "cancel.mjs"), stub.url, "ts-1", "cancelled-skill", "30", "1500"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert canceller.stdout is not None
        seen = json.loads(canceller.stdout.readline() or "{}")
        assert seen.get("code") == -32001, (
            seen,
            canceller.stderr.read() if canceller.poll() is not None else "",
        )
        assert "Request timed out" in seen["thrown"]
        # Its HTTP request is still open (the process lives); the stub ends the wait all the same.
        wait_until(lambda: wakeups(stub)["waiting"] == 0, timeout=10, message="the cancelled poll left")
        assert wakeups(stub)["cancelled"] == 1
        assert '"why": "cancelled"' in stub.logs()

        async def another_agent_takes_it() -> dict[str, Any]:
            async with mcp.Client(stub.url) as client:
                agent = {"agent_id": "py-1", "name": "P", "role": "r", "skills": ["cancelled-skill"]}
                await call_tool(client, "register_agent", agent)
                async with anyio.create_task_group() as tg:
                    offer: dict[str, Any] = {}

                    async def poll() -> None:
                        offer.update(
                            await call_tool(
                                client, "request_next_task", {"agent_id": "py-1", "wait_seconds": 20}
                            )
                        )

                    tg.start_soon(poll)
                    asleep = lambda: wakeups(stub)["sleeping"] == 1  # noqa: E731
                    await anyio.to_thread.run_sync(
                        lambda: wait_until(asleep, timeout=10, message="py-1 asleep")
                    )
                    await anyio.to_thread.run_sync(
                        load_tasks, stub.db, task("after-cancel", "cancelled-skill")
                    )
                return offer

        offer = anyio.run(another_agent_takes_it)
        assert offer["assignment"]["task_id"] == "after-cancel", offer
        assigned = read_events(stub.db, "assigned", "after-cancel")
        assert [(e["agent_id"], e["attempt"]) for e in assigned] == [("py-1", 1)]
        assert read_events(stub.db, "released", "after-cancel") == []
    finally:
        if canceller.stdin is not None:
            canceller.stdin.close()
        canceller.wait(timeout=30)


# ------------------------------------------------------------------ the same POSTs by hand


def call_body(request_id: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def cancel_body(request_id: Any) -> dict[str, Any]:
    params = {"requestId": request_id, "reason": "timed out"}
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}


@pytest.mark.anyio
async def test_a_cancellation_ends_the_long_poll_of_its_id_at_once_and_no_other(stub_factory: Any) -> None:
    stub = stub_factory()
    answers: dict[str, Any] = {}
    async with httpx2.AsyncClient(timeout=60) as http:

        async def send(body: dict[str, Any]) -> httpx2.Response:
            return await http.post(stub.url, json=body, headers=HEADERS)

        async def long_poll(agent: str, request_id: int) -> None:
            poll = {"agent_id": agent, "wait_seconds": 30}
            answers[agent] = tool_answer(await send(call_body(request_id, "request_next_task", poll)))

        async def until(predicate: Any, message: str) -> None:
            await anyio.to_thread.run_sync(lambda: wait_until(predicate, timeout=10, message=message))

        for n, agent in enumerate(("raw-7", "raw-8")):
            register = {"agent_id": agent, "name": "R", "role": "r", "skills": ["raw"]}
            tool_answer(await send(call_body(100 + n, "register_agent", register)))
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_poll, "raw-7", 7)
            tg.start_soon(long_poll, "raw-8", 8)
            await until(lambda: wakeups(stub)["sleeping"] == 2, "both asleep")
            assert (await send(cancel_body(8))).status_code == 202
            await until(lambda: "raw-8" in answers, "raw-8 answered")  # far below its 30 s
            assert "raw-7" not in answers
            assert wakeups(stub)["sleeping"] == 1  # id 8 ended the poll of id 8 only
            assert (await send(cancel_body("7"))).status_code == 202  # "7" names id 7, as the SDKs read it
            await until(lambda: "raw-7" in answers, "raw-7 answered")
    for offer in answers.values():
        assert (offer["has_task"], offer["retry_after_seconds"]) == (False, 0)
        assert "cancelled by its client" in offer["message"]
    assert (wakeups(stub)["waiting"], wakeups(stub)["cancelled"]) == (0, 2)


def test_a_cancellation_names_one_call_of_one_client() -> None:
    def request(host: str, auth: str = "") -> Any:
        return SimpleNamespace(
            client=SimpleNamespace(host=host), headers={"authorization": auth} if auth else {}
        )

    assert call_key(request("10.0.0.1"), 7) == call_key(request("10.0.0.1"), "7")
    assert call_key(request("10.0.0.1"), 7) != call_key(request("10.0.0.2"), 7)
    assert call_key(request("10.0.0.1", "Bearer a"), 7) != call_key(request("10.0.0.1", "Bearer b"), 7)
    assert call_key(None, 7) is None  # stdio, in memory: the SDK's session cancels the call itself
    assert call_key(request("10.0.0.1"), True) is None  # not a JSON-RPC id
    cancels, ended = CallCancels(), []
    with cancels.watch(request("10.0.0.1"), 7, lambda: ended.append("poll")):
        assert cancels.cancel(request("10.0.0.2"), 7) == 0
        assert cancels.cancel(request("10.0.0.1"), 7) == 1
        assert cancels.cancel(request("10.0.0.1"), 7) == 0  # once
    assert ended == ["poll"]
    assert cancels.waiting == 0
