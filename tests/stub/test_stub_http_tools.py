"""Every tool against the real stub process over real HTTP, including the error shapes."""

from __future__ import annotations

import json
from typing import Any

import mcp
import pytest

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, read_events, task

pytestmark = pytest.mark.anyio

ALL_TOOLS = {
    "register_agent", "request_next_task", "report_task_progress", "report_blocker", "get_project_status",
    "get_agent_status", "list_registered_agents", "ping", "heartbeat", "release_task", "log_artifact",
    "get_task_context", "get_artifact", "deregister_agent",
    # operator tools
    "resolve_blocker", "load_project", "list_tasks", "rerun_task",
}  # fmt: skip


async def register(client: Any, agent_id: str, *skills: str) -> dict[str, Any]:
    return await call_tool(
        client, "register_agent", {"agent_id": agent_id, "name": "N", "role": "R", "skills": list(skills)}
    )


async def test_list_tools_advertises_every_tool_with_a_useful_schema(stub: StubProcess) -> None:
    async with mcp.Client(stub.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == ALL_TOOLS
    schema = tools["report_task_progress"].input_schema
    assert set(schema["required"]) == {"agent_id", "task_id", "status", "progress", "message"}
    assert schema["properties"]["progress"]["maximum"] == 100
    assert schema.get("additionalProperties") is False
    assert all(t.description for t in tools.values())


async def test_full_cycle_over_http(stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    load_tasks(
        stub.db,
        task(
            f"build-{uniq}",
            skill,
            priority="high",
            payload={"path": "calc"},
            labels=["ci"],
            estimated_hours=2,
        ),
        task(
            f"test-{uniq}",
            skill,
            dependencies=[f"build-{uniq}"],
            description="run tests",
            instructions="pytest -q",
        ),
    )
    agent = f"w-{uniq}"
    async with mcp.Client(stub.url) as c:
        reg = await register(c, agent, skill.upper())
        assert reg["success"]
        assert reg["agent_data"]["agent_id"] == agent
        assert reg["agent_data"]["registered_at"]

        got = await call_tool(c, "request_next_task", {"agent_id": agent})
        a = got["assignment"]
        assert got["has_task"]
        assert a["task_id"] == f"build-{uniq}"
        assert (a["task_name"], a["priority"], a["payload"], a["labels"], a["estimated_hours"]) == (
            f"Task build-{uniq}",
            "high",
            {"path": "calc"},
            ["ci"],
            2.0,
        )
        assert a["attempt"] == 1
        assert a["checkpoint"] is None
        assert a["dependency_artifacts"] == []
        assert a["lease"]["ttl_seconds"] == 60
        assert a["lease"]["lease_id"]
        assert a["lease"]["expires_at"].endswith("+00:00")

        prog = await call_tool(c, "report_task_progress", {
            "agent_id": agent, "task_id": a["task_id"], "status": "in_progress", "progress": 42.6,
            "message": "half", "checkpoint": {"step": 1}})  # fmt: skip
        assert prog["acknowledged"]
        assert prog["status"] == "progress_recorded"
        assert prog["lease_expires_at"]

        hb = await call_tool(c, "heartbeat", {"agent_id": agent})
        assert hb["current_task"] == a["task_id"]
        assert hb["lease_expires_at"]

        art = await call_tool(c, "log_artifact", {
            "agent_id": agent, "task_id": a["task_id"], "artifact_type": "docker_image",
            "description": "app image", "location": "registry/app:1", "data": {"digest": "sha256:1"}})  # fmt: skip
        assert art["success"]
        assert isinstance(art["artifact_id"], int)

        status = await call_tool(c, "get_agent_status", {"agent_id": agent})
        assert status["found"]
        assert status["agent_info"]["status"] == "working"
        assert status["agent_info"]["current_task"] == a["task_id"]

        done = await call_tool(c, "report_task_progress", {
            "agent_id": agent, "task_id": a["task_id"], "status": "completed", "progress": 100, "message": "ok"})  # fmt: skip
        assert done["status"] == "task_completed"
        again = await call_tool(c, "report_task_progress", {
            "agent_id": agent, "task_id": a["task_id"], "status": "completed", "progress": 100, "message": "ok"})  # fmt: skip
        assert again["success"]
        assert again["status"] == "already_complete"

        nxt = (await call_tool(c, "request_next_task", {"agent_id": agent}))["assignment"]
        assert nxt["task_id"] == f"test-{uniq}"
        assert nxt["description"] == "run tests"
        assert nxt["instructions"] == "pytest -q"
        assert nxt["dependencies"] == [f"build-{uniq}"]
        (dep_art,) = nxt["dependency_artifacts"]
        assert dep_art["artifact_id"] == art["artifact_id"]
        assert dep_art["data"] == {"digest": "sha256:1"}

        blk = await call_tool(c, "report_blocker", {
            "agent_id": agent, "task_id": nxt["task_id"], "blocker_description": "2 tests failed", "severity": "high"})  # fmt: skip
        assert blk["success"]
        assert blk["blocker_id"]
        assert "Tests are failing" in blk["resolution_suggestion"]
        assert (await call_tool(c, "request_next_task", {"agent_id": agent}))["has_task"] is False

        ctx = await call_tool(c, "get_task_context", {"task_id": nxt["task_id"]})
        assert ctx["task"]["status"] == "blocked"
        assert ctx["blockers"][0]["severity"] == "high"
        assert ctx["dependency_artifacts"][0]["artifact_type"] == "docker_image"
        build_ctx = await call_tool(c, "get_task_context", {"task_id": f"build-{uniq}"})
        assert build_ctx["task"]["checkpoint"] == {"step": 1}
        assert build_ctx["task"]["completed_by"] == agent
        assert [e["progress"] for e in build_ctx["progress_log"]] == [43, 100]
        assert build_ctx["artifacts"][0]["location"] == "registry/app:1"

        res = await call_tool(c, "resolve_blocker", {"task_id": nxt["task_id"], "resolution": "fixed"})
        assert res == {"success": True, "message": res["message"], "resolved": 1}
        back = (await call_tool(c, "request_next_task", {"agent_id": agent}))["assignment"]
        assert back["task_id"] == nxt["task_id"]
        assert back["attempt"] == 1

        rel = await call_tool(
            c, "release_task", {"agent_id": agent, "task_id": back["task_id"], "reason": "shutdown"}
        )
        assert rel["success"]
        assert (await call_tool(c, "get_task_context", {"task_id": back["task_id"]}))["task"][
            "status"
        ] == "todo"

        ps = await call_tool(c, "get_project_status", {})
        assert set(ps["project_status"]) == {
            "total_tasks",
            "todo",
            "in_progress",
            "blocked",
            "done",
            "completion_percentage",
        }
        assert set(ps["workers"]) == {"total", "working", "idle", "offline"}
        page = await call_tool(c, "list_registered_agents", {})
        listed = page["agents"]
        while "next_cursor" in page:  # the shared stub's roster may span pages
            page = await call_tool(c, "list_registered_agents", {"cursor": page["next_cursor"]})
            listed += page["agents"]
        assert page["agent_count"] == len(listed)
        assert agent in {x["agent_id"] for x in listed}
        pong = await call_tool(c, "ping", {"echo": "hello"})
        assert pong["pong"]
        assert pong["status"] == "online"
        assert pong["echo"] == "hello"
        assert pong["uptime_seconds"] >= 0
    kinds = [e["kind"] for e in read_events(stub.db, task_id=f"build-{uniq}")]
    assert kinds.count("assigned") == 1
    assert kinds.count("completed") == 1


@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("register_agent", {"agent_id": "x", "name": "n", "role": "r"}, "argument 'skills' is missing"),
        ("register_agent", {"agent_id": "x", "name": "n", "role": "r", "skills": "a,b"}, "argument 'skills'"),
        ("register_agent", {"agent_id": "", "name": "n", "role": "r", "skills": []}, "argument 'agent_id'"),
        ("register_agent", {"agent_id": "x" * 201, "name": "n", "role": "r", "skills": []}, "argument 'agent_id'"),
        ("register_agent", {"agent_id": "a\nb", "name": "n", "role": "r", "skills": []}, "printable"),
        ("register_agent", {"agent_id": "x", "name": "n", "role": "r", "skills": ["s"] * 65}, "argument 'skills'"),
        ("request_next_task", {"agent_id": "x", "wait_seconds": 31}, "argument 'wait_seconds'"),
        ("request_next_task", {"agent_id": "x", "surprise": 1}, "argument 'surprise' is not accepted"),
        ("report_task_progress",
         {"agent_id": "x", "task_id": "t", "status": "done", "progress": 1, "message": "m"}, "argument 'status'"),
        ("report_task_progress",
         {"agent_id": "x", "task_id": "t", "status": "in_progress", "progress": 101, "message": "m"}, "argument 'progress'"),
        ("report_task_progress",
         {"agent_id": "x", "task_id": "t", "status": "in_progress", "progress": "5", "message": "m"}, "argument 'progress'"),
        ("report_task_progress",
         {"agent_id": "x", "task_id": "t", "status": "in_progress", "progress": 5, "message": "m" * 10_001},
         "argument 'message'"),
        ("report_task_progress",
         {"agent_id": "x", "task_id": "t", "status": "in_progress", "progress": 5, "message": "m",
          "checkpoint": {"blob": "x" * (256 * 1024)}}, "256 KiB"),
        ("report_blocker", {"agent_id": "x", "task_id": "t", "blocker_description": "d", "severity": "meh"},
         "argument 'severity'"),
        ("get_task_context", {}, "argument 'task_id' is missing"),
    ],
)  # fmt: skip
async def test_bad_arguments_give_invalid_argument_json(
    stub: StubProcess, tool: str, arguments: dict[str, Any], fragment: str
) -> None:
    async with mcp.Client(stub.url) as c:
        result = await c.call_tool(tool, arguments)
    assert result.is_error
    body = json.loads(result.content[0].text)
    assert body["success"] is False
    assert body["error"] == "invalid_argument"
    assert fragment in body["message"]
    assert f"{tool} takes" in body["message"]
    assert result.structured_content is None  # an error is text only (docs/protocol.md)


async def test_unknown_tool_lists_the_tools(stub: StubProcess) -> None:
    async with mcp.Client(stub.url) as c:
        body = await call_tool(c, "make_coffee", {})
    assert body["error"] == "invalid_argument"
    assert all(name in body["message"] for name in ALL_TOOLS)


async def test_board_errors_have_codes_and_change_nothing(stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    load_tasks(stub.db, task(f"t-{uniq}", skill))
    async with mcp.Client(stub.url) as c:
        assert (await call_tool(c, "request_next_task", {"agent_id": f"ghost-{uniq}"}))[
            "error"
        ] == "agent_not_registered"
        assert (await call_tool(c, "heartbeat", {"agent_id": f"ghost-{uniq}"}))[
            "error"
        ] == "agent_not_registered"
        await register(c, f"a-{uniq}", skill)
        await register(c, f"b-{uniq}", skill)
        missing = await call_tool(c, "report_task_progress", {
            "agent_id": f"a-{uniq}", "task_id": f"nope-{uniq}", "status": "in_progress", "progress": 1, "message": "m"})  # fmt: skip
        assert missing["error"] == "task_not_found"
        assert "request_next_task" in missing["message"]
        assert (await call_tool(c, "resolve_blocker", {"task_id": f"nope-{uniq}", "resolution": "r"}))[
            "error"
        ] == "task_not_found"
        not_held = await call_tool(c, "report_task_progress", {
            "agent_id": f"a-{uniq}", "task_id": f"t-{uniq}", "status": "completed", "progress": 100, "message": "m"})  # fmt: skip
        assert not_held["error"] == "not_task_holder"
        await call_tool(c, "request_next_task", {"agent_id": f"a-{uniq}"})
        stolen = await call_tool(c, "log_artifact", {
            "agent_id": f"b-{uniq}", "task_id": f"t-{uniq}", "artifact_type": "x", "description": "d"})  # fmt: skip
        assert stolen["error"] == "not_task_holder"
        await call_tool(c, "report_task_progress", {
            "agent_id": f"a-{uniq}", "task_id": f"t-{uniq}", "status": "completed", "progress": 100, "message": "m"})  # fmt: skip
        late = await call_tool(c, "report_task_progress", {
            "agent_id": f"b-{uniq}", "task_id": f"t-{uniq}", "status": "completed", "progress": 100, "message": "m"})  # fmt: skip
        assert late["error"] == "task_already_complete"
        ctx = await call_tool(c, "get_task_context", {"task_id": f"t-{uniq}"})
        assert ctx["task"]["completed_by"] == f"a-{uniq}"
        assert ctx["artifacts"] == []
        unknown = await call_tool(c, "get_agent_status", {"agent_id": f"ghost-{uniq}"})
        assert unknown["success"]
        assert unknown["found"] is False
        assert unknown["message"]


async def test_legacy_handshake_client_session_works_over_http(stub: StubProcess) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(stub.url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        body = json.loads((await session.call_tool("ping", {"echo": "legacy"})).content[0].text)
    assert body["echo"] == "legacy"
