"""MarcusDialect's decisions, with Marcus's recorded answers played back and a fake clock.

The real server runs in tests/marcus/; here the rare paths are driven on purpose: "already
have a task" with and without a held-task file, a task given back while the worker goes on,
keep-alive spacing, the retry hint, lease loss.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import pytest

from pm_worker.dialects.base import UNSET
from pm_worker.dialects.marcus import MarcusDialect
from pm_worker.marcus.answers import LeaseLost
from pm_worker.marcus.state import LocalState
from pm_worker.protocol_settings import MissingProjectId

RECORDED: dict[str, Any] = json.loads((Path(__file__).with_name("marcus_answers.json")).read_text())
TASK_ID = RECORDED["request_next_task.task"]["task"]["id"]
OK = RECORDED["report_task_progress.ok"]
CONTEXT = {"success": True, "context": {"task_id": TASK_ID, "artifacts": []}}


def rec(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(json.dumps(RECORDED[name]))
    return value


def task_answer(description: str = "Do it.\n```pm-payload\nsteps: 2\n```") -> dict[str, Any]:
    answer = rec("request_next_task.task")
    answer["task"]["description"] = description
    return answer


class FakeMarcus:
    """`send` for the dialect: queued answers per tool (the last one repeats), every call recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.now = 1000.0
        self.slept: list[float] = []

    def queue(self, tool: str, *answers: dict[str, Any]) -> None:
        self.answers[tool].extend(answers)

    async def send(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]:
        self.calls.append((tool, arguments))
        queue = self.answers[tool]
        if not queue:
            raise AssertionError(f"unexpected call {tool} {arguments}")
        return queue.popleft() if len(queue) > 1 else queue[0]

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def tools(self) -> list[str]:
        return [tool for tool, _ in self.calls]


def dialect(tmp_path: Path, marcus: FakeMarcus, project: str | None = "p1") -> MarcusDialect:
    import random

    return MarcusDialect(
        project_id=project,
        url="http://m:4298/mcp",
        workspace=tmp_path,
        state_dir=tmp_path / ".pm-state" / "marcus",
        rng=random.Random(1),
        clock=marcus.clock,
        sleep=marcus.sleep,
    )


async def registered(tmp_path: Path, marcus: FakeMarcus, agent: str = "w1") -> MarcusDialect:
    d = dialect(tmp_path, marcus)
    marcus.queue("register_agent", rec("register_agent.ok"))
    await d.register(marcus.send, agent, "W1", "steps", ["steps"])
    return d


async def test_no_project_id_is_a_settings_error_before_any_call(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    with pytest.raises(MissingProjectId, match="PM_PROJECT_ID"):
        await dialect(tmp_path, marcus, project=None).register(marcus.send, "w1", "W1", "steps", [])
    assert marcus.calls == []


async def test_no_task_waits_out_the_hint_within_the_long_poll_and_never_busy_loops(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", rec("request_next_task.none"))
    asked = 0
    for _ in range(10):  # what the worker loop does with POLL_WAIT_SECONDS=25
        offer = await d.request_next_task(marcus.send, "w1", 25)
        assert not offer.has_task
    asked = marcus.tools().count("request_next_task")
    waited = marcus.now - 1000.0
    assert waited == pytest.approx(sum(marcus.slept))
    # one question per 30-36 s of waiting, never more
    assert asked <= waited / 30 + 1
    assert asked >= waited / 36
    # with POLL_WAIT_SECONDS=0 the loop sleeps the hint it is given instead
    offer = await d.request_next_task(marcus.send, "w1", 0)
    assert offer.retry_after_seconds is not None
    assert 0 < offer.retry_after_seconds <= 36


async def test_a_task_is_held_locally_and_a_missing_block_is_marked(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer("No inputs here."))
    marcus.queue("get_task_context", CONTEXT)
    offer = await d.request_next_task(marcus.send, "w1", 25)
    assert offer.assignment is not None
    extra = offer.assignment.model_extra or {}
    assert extra["payload_missing"] is True
    assert "has no pm-payload block" in extra["payload_error"]
    assert "docs/workers.md#steps" in extra["payload_error"]
    held = LocalState(tmp_path / ".pm-state" / "marcus", "w1").held()
    assert held is not None
    assert held.assignment.task_id == TASK_ID


async def test_checkpoints_stay_local_and_keepalive_reports_only_when_due(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer())
    marcus.queue("get_task_context", CONTEXT)
    marcus.queue("report_task_progress", OK)
    await d.request_next_task(marcus.send, "w1", 25)
    await d.report_progress(marcus.send, "w1", TASK_ID, 50.0, "half", "in_progress", {"next_step": 1})
    [(_, sent)] = [c for c in marcus.calls if c[0] == "report_task_progress"]
    assert sent == {
        "agent_id": "w1",
        "task_id": TASK_ID,
        "status": "in_progress",
        "progress": 50,
        "message": "half",
    }
    cp = LocalState(tmp_path / ".pm-state" / "marcus", "w2").checkpoint(TASK_ID)
    assert cp is not None
    assert cp.data == {"next_step": 1}
    before = len(marcus.calls)
    for _ in range(8):  # heartbeats every 10 s for 80 s: no call
        marcus.now += 10
        beat = await d.heartbeat(marcus.send, "w1")
        assert beat.current_task == TASK_ID
    assert len(marcus.calls) == before
    marcus.now += 10  # 90 s of silence: one renewal with the last progress
    await d.heartbeat(marcus.send, "w1")
    assert marcus.calls[-1] == (
        "report_task_progress",
        {
            "agent_id": "w1",
            "task_id": TASK_ID,
            "status": "in_progress",
            "progress": 50,
            "message": "still working: half",
        },
    )
    await d.heartbeat(marcus.send, "w1")
    assert len(marcus.calls) == before + 1


async def test_completion_lets_go_and_a_lost_lease_is_never_retried(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer())
    marcus.queue("get_task_context", CONTEXT)
    marcus.queue("report_task_progress", rec("report_task_progress.stale_completion"))
    await d.request_next_task(marcus.send, "w1", 25)
    with pytest.raises(LeaseLost):
        await d.report_progress(marcus.send, "w1", TASK_ID, 100, "done", "completed", UNSET)
    assert marcus.tools().count("report_task_progress") == 1
    assert d.held_task is None
    assert LocalState(tmp_path / ".pm-state" / "marcus", "w1").held() is None
    assert (await d.heartbeat(marcus.send, "w1")).current_task is None


async def test_restart_with_the_same_id_resumes_the_held_task_with_its_checkpoint(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer())
    marcus.queue("get_task_context", CONTEXT)
    marcus.queue("report_task_progress", OK)
    await d.request_next_task(marcus.send, "w1", 25)
    await d.report_progress(marcus.send, "w1", TASK_ID, 40, "step 2", "in_progress", {"next_step": 2})
    # the container is restarted: a new process, a new dialect, the same AGENT_ID and workspace
    again = await registered(tmp_path, marcus)
    calls = len(marcus.calls)
    offer = await again.request_next_task(marcus.send, "w1", 25)
    assert offer.assignment is not None
    assert offer.assignment.task_id == TASK_ID
    assert offer.assignment.checkpoint == {"next_step": 2}
    assert offer.assignment.payload == {"steps": 2}
    # no new task asked for; the lease renewed first
    assert [t for t, _ in marcus.calls[calls:]] == ["report_task_progress"]
    assert marcus.calls[-1][1]["message"] == "resumed by w1 after a restart"
    assert marcus.calls[-1][1]["progress"] == 40


async def test_already_have_a_task_resumes_the_held_one(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer())
    marcus.queue("get_task_context", CONTEXT)
    await d.request_next_task(marcus.send, "w1", 25)
    other = dialect(tmp_path, marcus)  # e.g. a second client of the same agent that did not register
    other._state = LocalState(tmp_path / ".pm-state" / "marcus", "w1")
    held = rec("request_next_task.already_have")
    held["current_task"]["id"] = TASK_ID
    marcus.queue("request_next_task", held)
    marcus.queue("report_task_progress", OK)
    offer = await other.request_next_task(marcus.send, "w1", 25)
    assert offer.assignment is not None
    assert offer.assignment.task_id == TASK_ID
    assert offer.assignment.payload == {"steps": 2}


async def test_already_have_a_task_it_cannot_know_is_blocked_with_the_reason(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", rec("request_next_task.already_have"))
    marcus.queue("report_blocker", rec("report_blocker.ok"))
    offer = await d.request_next_task(marcus.send, "w1", 25)
    assert not offer.has_task
    assert offer.retry_after_seconds == 0
    tool, args = marcus.calls[-1]
    assert tool == "report_blocker"
    assert args["task_id"] == "aea60c70981c46faa1e1264c7b786ca3"
    assert "no record of its assignment" in args["blocker_description"]


async def test_a_task_given_back_while_the_worker_goes_on_is_blocked_not_kept(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", task_answer(), rec("request_next_task.none"))
    marcus.queue("get_task_context", CONTEXT)
    marcus.queue("report_task_progress", OK)
    marcus.queue("report_blocker", rec("report_blocker.ok"))
    await d.request_next_task(marcus.send, "w1", 25)
    released = await d.release_task(marcus.send, "w1", TASK_ID, "declined by w1: skills do not match")
    assert "Marcus has no release" in released.message
    assert (await d.heartbeat(marcus.send, "w1")).current_task is None  # nothing to release again on stop
    assert LocalState(tmp_path / ".pm-state" / "marcus", "w1").held() is not None  # a restart would resume it
    await d.request_next_task(marcus.send, "w1", 0)
    blocker = [a for t, a in marcus.calls if t == "report_blocker"]
    assert len(blocker) == 1
    assert "gave this task back (declined by w1: skills do not match)" in blocker[0]["blocker_description"]
    assert LocalState(tmp_path / ".pm-state" / "marcus", "w1").held() is None
    assert marcus.tools()[-1] == "request_next_task"


async def test_marcus_forgetting_the_agent_registers_again_and_repeats(tmp_path: Path) -> None:
    marcus = FakeMarcus()
    d = await registered(tmp_path, marcus)
    marcus.queue("request_next_task", rec("request_next_task.unregistered"), task_answer())
    marcus.queue("get_task_context", CONTEXT)
    offer = await d.request_next_task(marcus.send, "w1", 25)
    assert offer.has_task
    assert marcus.tools() == [
        "register_agent",
        "request_next_task",
        "register_agent",
        "request_next_task",
        "get_task_context",
    ]
    assert marcus.calls[2][1]["project_id"] == "p1"


async def test_the_contracts_calls_reach_marcus_through_call(tmp_path: Path) -> None:
    """What PMClient sends, `call(send, tool, args)` with the contract's arguments, lands on the
    translation of that tool; tools Marcus has no counterpart for are refused as unsupported."""
    from pm_protocol import InvalidCall, tools
    from pm_protocol.results import HeartbeatResult, RegisterResult, TaskOffer
    from pm_worker.errors import PMError

    marcus = FakeMarcus()
    d = dialect(tmp_path, marcus)
    marcus.queue("register_agent", rec("register_agent.ok"))
    marcus.queue("request_next_task", task_answer())
    marcus.queue("get_task_context", CONTEXT)
    register = {"agent_id": "w1", "name": "W1", "role": "steps", "skills": ["steps"]}
    assert isinstance(await d.call(marcus.send, tools.register_agent, register), RegisterResult)
    offer = await d.call(marcus.send, tools.request_next_task, {"agent_id": "w1", "wait_seconds": 5.0})
    assert isinstance(offer, TaskOffer)
    assert offer.assignment is not None
    assert offer.assignment.task_id == TASK_ID
    beat = await d.call(marcus.send, tools.heartbeat, {"agent_id": "w1"})
    assert isinstance(beat, HeartbeatResult)
    assert beat.current_task == TASK_ID  # answered here: Marcus has no heartbeat
    assert marcus.tools() == ["register_agent", "request_next_task", "get_task_context"]
    with pytest.raises(PMError, match="Marcus has no list_tasks") as refused:
        await d.call(marcus.send, tools.list_tasks, {})
    assert refused.value.code == "unsupported"
    with pytest.raises(InvalidCall):  # checked before any translation (PMClient maps it to InvalidArgument)
        await d.call(marcus.send, tools.heartbeat, {"agent": "w1"})
    assert len(marcus.calls) == 3
