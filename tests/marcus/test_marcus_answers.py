"""The Marcus dialect's translation against a live Marcus 0.3.8, over HTTP with the MCP 2.x client.

What a user relies on: every answer shape the dialect handles is what a real Marcus sends
(a task with its pm-payload, "no task" with a retry hint, "already have a task", progress,
a blocker with suggestions, artifacts flowing to a dependent task), tools/list tells Marcus
from the stub, and the Host header Marcus accepts from another host is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp
import pytest

from pm_agent_stub.testing import start_stub
from pm_worker.dialects.choose import dialect_for_tools
from pm_worker.errors import PMError
from pm_worker.marcus import answers
from pm_worker.marcus.answers import HeldTask, ProjectIdRequired
from tests.marcus.host import MarcusProcess, post_initialize

pytestmark = pytest.mark.marcus


async def call(client: mcp.Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Marcus's JSON answer: the text content (its structured content wraps it in `result`)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error  # Marcus never sets it, even when it refuses
    text = json.loads(result.content[0].text)
    assert isinstance(text, dict)
    assert answers.unwrap(dict(result.structured_content or {})) == text
    return text


def fleet_task(key: str, name: str, labels: list[str], payload: str | None, **fields: Any) -> dict[str, Any]:
    description = f"{name}."
    if payload is not None:
        description += f"\n\n```yaml pm-payload\n{payload}\n```\n"
    return {
        "key": key,
        "name": name,
        "description": description,
        "priority": "medium",
        "estimated_hours": 0.1,
        "labels": labels,
        "project_id": "fleet",
        **fields,
    }


async def test_every_answer_shape_the_dialect_handles(marcus: MarcusProcess, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    ids = marcus.seed(
        [
            fleet_task("api", "API reference", ["documentation"], "kind: api\npath: src", priority="high"),
            fleet_task("tests", "Run the tests", ["testing"], "path: .", dependencies=["api"]),
        ]
    )
    async with mcp.Client(marcus.url) as client:
        assert dialect_for_tools(t.name for t in (await client.list_tools()).tools) == "marcus"
        with pytest.raises(ProjectIdRequired):
            answers.register_result(
                await call(
                    client,
                    "register_agent",
                    {
                        "agent_id": "doc-1",
                        "name": "Doc",
                        "role": "documentation",
                        "skills": ["documentation"],
                    },
                ),
                agent_id="doc-1",
                name="Doc",
                role="documentation",
                skills=["documentation"],
            )
        reg = answers.register_result(
            await call(
                client,
                "register_agent",
                {
                    "agent_id": "doc-1",
                    "name": "Doc",
                    "role": "documentation",
                    "skills": ["documentation"],
                    "project_id": "fleet",
                },
            ),
            agent_id="doc-1",
            name="Doc",
            role="documentation",
            skills=["documentation"],
        )
        assert reg.agent_data.agent_id == "doc-1"

        offer = answers.task_offer(
            await call(client, "request_next_task", {"agent_id": "doc-1"}), workspace=workspace
        )
        assert not isinstance(offer, HeldTask)
        assert offer.assignment is not None
        task = offer.assignment
        assert (task.task_id, task.task_name, task.payload) == (
            ids["api"],
            "API reference",
            {"kind": "api", "path": "src"},
        )
        assert task.required_skills == ["documentation"]

        # asking again while holding it: Marcus names the held task (only its id and name)
        held = answers.task_offer(await call(client, "request_next_task", {"agent_id": "doc-1"}))
        assert held == HeldTask(ids["api"], "API reference", "todo")

        ack = answers.progress_ack(
            await call(
                client,
                "report_task_progress",
                {
                    "agent_id": "doc-1",
                    "task_id": task.task_id,
                    "status": "in_progress",
                    "progress": 40,
                    "message": "writing pages",
                },
            ),
            "in_progress",
        )
        assert ack.status == "progress_recorded"

        args = answers.artifact_arguments(
            task_id=task.task_id,
            agent_id="doc-1",
            artifact_id=1,
            artifact_type="api_docs",
            description="3 pages",
            location="docs/api",
            data={"pages": 3},
            project_root=workspace,
            created_at="t0",
        )
        logged = answers.artifact_result(await call(client, "log_artifact", args), 1)
        assert logged.artifact_id == 1
        assert (workspace / args["location"]).is_file()  # Marcus wrote it into the shared workspace
        with pytest.raises(PMError, match="project_root directory does not exist"):
            answers.artifact_result(
                await call(client, "log_artifact", {**args, "project_root": str(tmp_path / "no")}), 2
            )

        done = answers.progress_ack(
            await call(
                client,
                "report_task_progress",
                {
                    "agent_id": "doc-1",
                    "task_id": task.task_id,
                    "status": "completed",
                    "progress": 100,
                    "message": "3 pages",
                },
            ),
            "completed",
        )
        assert done.status == "task_completed"

        # the dependent task is offered now, and its dependency's artifact comes back whole
        await call(
            client,
            "register_agent",
            {
                "agent_id": "test-1",
                "name": "Tester",
                "role": "testing",
                "skills": ["testing"],
                "project_id": "fleet",
            },
        )
        offer = answers.task_offer(
            await call(client, "request_next_task", {"agent_id": "test-1"}), workspace=workspace
        )
        assert not isinstance(offer, HeldTask)
        assert offer.assignment is not None
        assert offer.assignment.task_id == ids["tests"]
        assert offer.assignment.dependency_artifacts == []  # Marcus delivers only "architectural" types here
        [art] = answers.context_artifacts(
            await call(client, "get_task_context", {"task_id": ids["tests"]}), workspace
        )
        assert (art.task_id, art.agent_id, art.artifact_type, art.location, art.data) == (
            ids["api"],
            "doc-1",
            "api_docs",
            "docs/api",
            {"pages": 3},
        )

        blocked = answers.blocker_result(
            await call(
                client,
                "report_blocker",
                {
                    "agent_id": "test-1",
                    "task_id": ids["tests"],
                    "severity": "high",
                    "blocker_description": "1 of 3 tests failed in demo: tests/test_x.py::test_y - assert 2 == 3",
                },
            )
        )
        assert blocked.resolution_suggestion.startswith("Root cause: ")
        assert "Steps: 1) " in blocked.resolution_suggestion

        none = answers.task_offer(await call(client, "request_next_task", {"agent_id": "test-1"}))
        assert not isinstance(none, HeldTask)
        assert not none.has_task
        assert none.retry_after_seconds == 30

    board = marcus.board()
    assert board[ids["api"]]["status"] == "done"
    assert board[ids["tests"]]["status"] == "blocked"


async def test_tools_list_tells_marcus_from_the_stub(marcus: MarcusProcess, tmp_path: Path) -> None:
    stub = start_stub(tmp_path / "board.db")
    try:
        async with mcp.Client(stub.url) as client:
            assert dialect_for_tools(t.name for t in (await client.list_tools()).tools) == "stub"
    finally:
        stub.stop()
    async with mcp.Client(marcus.url) as client:
        assert dialect_for_tools(t.name for t in (await client.list_tools()).tools) == "marcus"


def test_host_header_marcus_accepts(marcus: MarcusProcess) -> None:
    """Its MCP SDK answers 421 to any Host but localhost/127.0.0.1 (with a port, any port)."""
    assert post_initialize(marcus.port) == 200
    assert post_initialize(marcus.port, f"localhost:{marcus.port}") == 200
    assert post_initialize(marcus.port, "localhost:4298") == 200
    assert post_initialize(marcus.port, "127.0.0.1:1") == 200
    assert post_initialize(marcus.port, "marcus:4298") == 421
    assert post_initialize(marcus.port, f"pm-agent:{marcus.port}") == 421
    assert post_initialize(marcus.port, "localhost") == 421
