"""The seam between PMClient and a server's wire (pm_worker.dialect): replies, errors, a second dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp_types import CallToolResult, TextContent

from pm_worker import Assignment, InvalidArgument, NotTaskHolder, PMError, TaskContext, TransportError, Worker
from pm_worker.connection import parse_result
from pm_worker.dialect import Send
from pm_worker.models import HeartbeatResult, MessageResult, ProgressAck, TaskOffer
from pm_worker.stub_dialect import StubDialect
from pm_worker.testing import StubKit

from fakes import Recorder


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([TextContent(type="text", text="<html>502 Bad Gateway</html>")], "not JSON"),
        ([TextContent(type="text", text="[1, 2]")], "not an object"),
        ([], "no text content"),
    ],
)
def test_a_malformed_reply_is_a_transport_error_not_a_forged_answer(content: list[Any], says: str) -> None:
    with pytest.raises(TransportError, match=says):
        parse_result("ping", CallToolResult(content=content))


def test_the_structured_answer_is_the_reply() -> None:
    result = CallToolResult(
        content=[TextContent(type="text", text="{}")], structured_content={"success": True}
    )
    assert parse_result("ping", result) == {"success": True}


async def test_an_answer_of_the_wrong_shape_is_a_transport_error() -> None:
    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        return {"status": "ok"}  # some other server's answer

    with pytest.raises(TransportError, match="is not a Pong"):
        await StubDialect().ping(send, None)


async def test_arguments_that_break_the_protocol_are_refused_before_sending() -> None:
    sent: list[str] = []

    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        sent.append(tool)
        return {}

    with pytest.raises(InvalidArgument, match="severity"):
        await StubDialect().report_blocker(send, "a", "t", "stuck", "urgent")
    assert sent == []


def test_error_answers_become_the_typed_errors_the_loop_decides_on() -> None:
    dialect = StubDialect()
    lost = dialect.error("heartbeat", {"success": False, "error": "not_task_holder", "message": "gone"})
    assert isinstance(lost, NotTaskHolder)
    assert str(lost) == "heartbeat: not_task_holder: gone"
    other = dialect.error("ping", {"success": False, "error": "internal_error", "message": "boom"})
    assert type(other) is PMError
    assert other.code == "internal_error"


class UpstreamOnlyDialect(StubDialect):
    """A dialect for a server with upstream's tools only (no heartbeat, release_task or deregister), as the
    Marcus dialect will be: what the loop needs of the missing tools is answered locally."""

    name = "upstream-only"

    def __init__(self) -> None:
        self.holding: str | None = None

    async def request_next_task(self, send: Send, agent_id: str, wait_seconds: float) -> TaskOffer:
        offer = await super().request_next_task(send, agent_id, wait_seconds)
        if offer.assignment is not None:
            self.holding = offer.assignment.task_id
        return offer

    async def report_progress(
        self,
        send: Send,
        agent_id: str,
        task_id: str,
        progress: float,
        message: str,
        status: str,
        checkpoint: Any,
    ) -> ProgressAck:
        ack = await super().report_progress(send, agent_id, task_id, progress, message, status, checkpoint)
        if status != "in_progress":
            self.holding = None
        return ack

    async def heartbeat(self, send: Send, agent_id: str) -> HeartbeatResult:
        return HeartbeatResult(success=True, current_task=self.holding, lease_expires_at=None)

    async def release_task(
        self, send: Send, agent_id: str, task_id: str, reason: str, *, count_attempt: bool = False
    ) -> MessageResult:
        self.holding = None
        return MessageResult(
            success=True, message="this server has no release_task; its own timeout frees the task"
        )

    async def deregister(self, send: Send, agent_id: str) -> MessageResult:
        return MessageResult(
            success=True, message="this server has no deregister; it shows us offline after its timeout"
        )


class QuickWorker(Worker):
    role, name, skills = "quick", "Quick", ("quick",)

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        await ctx.progress(50, "half way")
        return f"did {task.task_id}"


async def test_a_second_dialect_plugs_in_behind_the_same_client(tmp_path: Path) -> None:
    kit = StubKit(tmp_path)
    worker = QuickWorker(kit.settings(heartbeat_seconds=0.05))
    dialect = UpstreamOnlyDialect()
    recorder: Recorder | None = None

    def make_client() -> Any:
        nonlocal recorder
        from pm_worker import PMClient

        recorder = Recorder(worker.connect)
        return PMClient(worker.settings, worker.identity, dialect=dialect, connect=recorder.connection)

    worker.make_client = make_client  # type: ignore[method-assign]
    run = await kit.run(
        worker, tasks=[{"id": f"t{i}", "name": "quick", "required_skills": ["quick"]} for i in range(3)]
    )
    assert all(run.status(f"t{i}") == "done" for i in range(3))
    assert recorder is not None
    used = set(recorder.tool_names())
    assert "heartbeat" not in used
    assert "release_task" not in used
    assert "deregister_agent" not in used
    assert {"register_agent", "request_next_task", "report_task_progress"} <= used
