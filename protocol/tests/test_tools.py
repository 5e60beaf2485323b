"""The tool table as typed code relies on it: one constant per tool, named after it, and the
one typed call checking what it sends and what it reads."""

from __future__ import annotations

from typing import Any

import pytest

from pm_protocol import TOOLS, InvalidCall, UnexpectedAnswer, call, tools
from pm_protocol.results import HeartbeatResult


def test_each_tool_is_the_module_constant_of_its_name() -> None:
    assert [getattr(tools, t.name) for t in TOOLS] == list(TOOLS)
    assert len({t.name for t in TOOLS}) == len(TOOLS)


async def test_a_call_sends_what_was_given_and_reads_the_result_model() -> None:
    sent: list[tuple[str, dict[str, Any], float]] = []

    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        sent.append((tool, arguments, extra_timeout))
        return {"success": True, "current_task": None, "lease_expires_at": None}

    beat = await call(send, tools.heartbeat, {"agent_id": "w1"}, extra_timeout=2)
    assert isinstance(beat, HeartbeatResult)
    assert sent == [("heartbeat", {"agent_id": "w1"}, 2)]
    await call(send, tools.heartbeat, tools.heartbeat.args(agent_id="w2"))
    assert sent[-1][1] == {"agent_id": "w2"}


async def test_a_call_that_breaks_the_contract_is_not_sent() -> None:
    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        raise AssertionError("sent")

    with pytest.raises(InvalidCall, match="severity") as refused:
        await call(
            send,
            tools.report_blocker,
            {"agent_id": "a", "task_id": "t", "blocker_description": "x", "severity": "urgent"},
        )
    assert refused.value.tool == "report_blocker"


async def test_an_answer_of_another_shape_is_unexpected() -> None:
    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        return {"status": "ok"}

    with pytest.raises(UnexpectedAnswer, match="is not a Pong"):
        await call(send, tools.ping, {})
