"""The wire contract against the real stub process over HTTP.

Every tool of `pm_protocol.TOOLS`, in each of its answer shapes, is checked against the
`outputSchema` the stub advertises for it (JSON Schema 2020-12, as an MCP client validates
`structuredContent`) and with `pm_protocol.conformance.problems(tool.result, answer) == []`
(nothing missing, nothing undeclared, nested models included); every error code the stub
can be made to send is checked against `ErrorResult` (text only, no structured content);
and `tools/list` advertises exactly the table, with each tool's annotations.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import httpx2
import mcp
import pytest
from jsonschema import Draft202012Validator

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, task
from pm_protocol import ERROR_CODES, TOOLS, TOOLS_BY_NAME, ErrorResult
from pm_protocol.conformance import problems

pytestmark = pytest.mark.anyio

# tool -> the answer shapes the scenario below must produce (and check) for it.
SHAPES: dict[str, set[str]] = {
    "register_agent": {"registered", "re-registered"},
    "request_next_task": {"has_task", "has_task with dependency artifacts", "no_task", "superseded"},
    "report_task_progress": {"progress_recorded", "task_completed", "task_blocked", "already_complete"},
    "report_blocker": {"blocked", "more detail"},
    "get_project_status": {"counts"},
    "get_agent_status": {"found", "not found"},
    "list_registered_agents": {"agents", "a page of several"},
    "ping": {"echo", "no echo"},
    "heartbeat": {"holding", "idle"},
    "release_task": {"released", "already complete"},
    "log_artifact": {"holder", "completer"},
    "get_task_context": {"full", "fresh", "a page of several", "next page"},
    "get_artifact": {"with data", "without data"},
    "resolve_blocker": {"requeued", "nothing open"},
    "deregister_agent": {"holding", "idle"},
    "load_project": {"added", "with warnings", "all on the board"},
    "list_tasks": {"a page with more", "the last page"},
    "rerun_task": {"done", "blocked with dependents", "already queued"},
}
# The error codes a client's own calls provoke; `unauthorized` and `internal_error` need a
# token stub and a broken database (the last test).
CODES_FROM_CALLS = {
    "invalid_argument", "agent_not_registered", "task_not_found", "not_task_holder", "task_already_complete",
    "artifact_not_found",
}  # fmt: skip


class Contract:
    """Calls tools and checks each answer against the model the protocol package declares."""

    def __init__(self, client: Any, listed: list[Any]) -> None:
        self.client = client
        self.schemas = {t.name: Draft202012Validator(t.output_schema) for t in listed}
        self.shapes: dict[str, set[str]] = {}
        self.codes: set[str] = set()

    def conforms(self, tool: str, answer: dict[str, Any]) -> None:
        """As its advertised outputSchema says (what MCP clients check), and exactly its result model."""
        assert [e.message for e in self.schemas[tool].iter_errors(answer)] == [], (tool, answer)
        assert problems(TOOLS_BY_NAME[tool].result, answer) == [], (tool, answer)

    async def ok(self, tool: str, arguments: dict[str, Any], shape: str) -> dict[str, Any]:
        answer = await call_tool(self.client, tool, arguments)
        assert answer["success"] is True, (tool, shape, answer)
        self.conforms(tool, answer)
        self.shapes.setdefault(tool, set()).add(shape)
        return answer

    async def refused(self, tool: str, arguments: dict[str, Any], code: str) -> dict[str, Any]:
        answer = await call_tool(self.client, tool, arguments)
        assert answer.get("error") == code, (tool, code, answer)
        assert problems(ErrorResult, answer) == [], (tool, answer)
        self.codes.add(code)
        return answer


async def test_tools_list_advertises_exactly_the_protocol_table(stub: StubProcess) -> None:
    async with mcp.Client(stub.url) as client:
        listed = (await client.list_tools()).tools
    assert [t.name for t in listed] == [t.name for t in TOOLS]
    for advertised, tool in zip(listed, TOOLS, strict=True):
        assert advertised.input_schema == tool.args.model_json_schema(), tool.name
        assert advertised.output_schema == tool.result.model_json_schema(mode="serialization"), tool.name
        assert advertised.output_schema["type"] == "object", tool.name  # the spec's rule through 2025-11-25
        Draft202012Validator.check_schema(advertised.output_schema)
        assert advertised.description == tool.description, tool.name
        hints = advertised.annotations
        assert hints is not None, tool.name
        assert (hints.read_only_hint, hints.destructive_hint, hints.open_world_hint) == (
            tool.read_only,
            tool.destructive,
            False,
        ), tool.name
        assert hints.idempotent_hint is (tool.read_only or tool.idempotent), tool.name
    read_only = {t.name for t in listed if t.annotations and t.annotations.read_only_hint}
    assert read_only == {
        "get_project_status", "get_agent_status", "list_registered_agents", "ping", "get_task_context",
        "get_artifact", "list_tasks",
    }  # fmt: skip
    assert [t.name for t in listed if t.annotations and t.annotations.destructive_hint] == ["rerun_task"]


async def test_every_tool_answers_in_every_shape_exactly_as_declared(stub: StubProcess, uniq: str) -> None:
    skill = f"contract-{uniq}"
    build, tests, docs, spare = (f"{n}-{uniq}" for n in ("build", "tests", "docs", "spare"))
    load_tasks(
        stub.db,
        task(build, skill, priority="urgent", payload={"path": "calc"}, labels=["ci"], estimated_hours=1.5),
        task(tests, skill, priority="high", dependencies=[build]),
        task(docs, skill, priority="medium"),
        task(spare, skill, priority="low"),
    )
    w, v, ghost = f"w-{uniq}", f"v-{uniq}", f"ghost-{uniq}"
    async with mcp.Client(stub.url) as client, mcp.Client(stub.url) as poller:
        c = Contract(client, (await client.list_tools()).tools)
        register = {"agent_id": w, "name": "Worker", "role": "contract", "skills": [skill]}
        await c.ok("register_agent", register, "registered")
        await c.ok("register_agent", register, "re-registered")
        await c.ok("register_agent", {**register, "agent_id": v}, "registered")
        await c.ok("ping", {"echo": "hi"}, "echo")
        await c.ok("ping", {}, "no echo")
        await c.ok("heartbeat", {"agent_id": w}, "idle")

        got = await c.ok("request_next_task", {"agent_id": w}, "has_task")
        assert got["assignment"]["task_id"] == build
        progress = {
            "agent_id": w,
            "task_id": build,
            "status": "in_progress",
            "progress": 40,
            "message": "half",
        }
        await c.ok("report_task_progress", {**progress, "checkpoint": {"step": 2}}, "progress_recorded")
        await c.ok("heartbeat", {"agent_id": w}, "holding")
        artifact = {"agent_id": w, "task_id": build, "artifact_type": "image", "description": "the image"}
        with_data = await c.ok(
            "log_artifact", {**artifact, "location": "reg/app:1", "data": {"digest": "x"}}, "holder"
        )
        done = {**progress, "status": "completed", "progress": 100, "message": "built"}
        await c.ok("report_task_progress", done, "task_completed")
        await c.ok("report_task_progress", done, "already_complete")
        without_data = await c.ok("log_artifact", artifact, "completer")
        await c.ok("get_artifact", {"artifact_id": with_data["artifact_id"]}, "with data")
        await c.ok("get_artifact", {"artifact_id": without_data["artifact_id"]}, "without data")
        await c.ok("release_task", {"agent_id": w, "task_id": build, "reason": "bye"}, "already complete")

        got = await c.ok("request_next_task", {"agent_id": w}, "has_task with dependency artifacts")
        assert got["assignment"]["task_id"] == tests
        assert len(got["assignment"]["dependency_artifacts"]) == 2
        blocked = {
            "agent_id": w,
            "task_id": tests,
            "status": "blocked",
            "progress": 10,
            "message": "3 tests failed",
        }
        await c.ok("report_task_progress", blocked, "task_blocked")
        report = {"agent_id": w, "task_id": tests, "blocker_description": "still failing", "severity": "high"}
        await c.ok("report_blocker", report, "more detail")

        await c.ok("request_next_task", {"agent_id": w}, "has_task")  # docs
        await c.ok("release_task", {"agent_id": w, "task_id": docs, "reason": "shutting down"}, "released")
        await c.ok("request_next_task", {"agent_id": w}, "has_task")  # docs again
        await c.ok(
            "report_blocker", {"agent_id": w, "task_id": docs, "blocker_description": "no access"}, "blocked"
        )
        await c.ok("request_next_task", {"agent_id": v}, "has_task")  # spare, held by v
        await c.ok("request_next_task", {"agent_id": w}, "no_task")

        # A long-poll superseded by a newer call from the same agent ends with has_task false
        # and retry_after_seconds 0. Heartbeat until it ends: whichever heartbeat comes after
        # the poll reached the stub supersedes it (no guess at how long that takes).
        poll = asyncio.ensure_future(
            call_tool(poller, "request_next_task", {"agent_id": w, "wait_seconds": 30})
        )
        while not poll.done():
            await c.ok("heartbeat", {"agent_id": w}, "idle")
            await asyncio.wait([poll], timeout=0.2)
        superseded = poll.result()
        assert (superseded["has_task"], superseded["retry_after_seconds"]) == (False, 0), superseded
        c.conforms("request_next_task", superseded)
        c.shapes["request_next_task"].add("superseded")

        await c.ok("resolve_blocker", {"task_id": tests, "resolution": "fixed"}, "requeued")
        await c.ok("resolve_blocker", {"task_id": tests, "resolution": "again"}, "nothing open")
        context = await c.ok("get_task_context", {"task_id": tests}, "full")
        assert context["progress_log"]
        assert context["blockers"]
        assert context["dependency_artifacts"]
        await c.ok("get_task_context", {"task_id": spare}, "fresh")
        first = await c.ok("get_task_context", {"task_id": tests, "limit": 1}, "a page of several")
        await c.ok("get_task_context", {"task_id": tests, "cursor": first["next_cursor"]}, "next page")
        await c.ok("get_project_status", {}, "counts")
        await c.ok("get_agent_status", {"agent_id": w}, "found")
        await c.ok("get_agent_status", {"agent_id": ghost}, "not found")
        await c.ok("list_registered_agents", {}, "agents")
        paged = await c.ok("list_registered_agents", {"limit": 1}, "a page of several")
        assert len(paged["agents"]) == 1, paged
        assert paged["next_cursor"], paged

        await c.refused("register_agent", {"agent_id": w}, "invalid_argument")
        await c.refused("no_such_tool", {}, "invalid_argument")
        await c.refused("request_next_task", {"agent_id": ghost}, "agent_not_registered")
        await c.refused("get_task_context", {"task_id": f"nope-{uniq}"}, "task_not_found")
        await c.refused("get_artifact", {"artifact_id": 2**62}, "artifact_not_found")
        await c.refused("report_task_progress", {**progress, "task_id": spare}, "not_task_holder")
        await c.refused("report_task_progress", {**done, "agent_id": v}, "task_already_complete")

        # Operator tools.
        extra = f"extra-{uniq}"
        text = f"tasks:\n  - {{id: {extra}, name: Extra, required_skills: [{skill}]}}\n"
        await c.ok("load_project", {"text": text, "source": "extra.yaml"}, "added")
        await c.ok("load_project", {"text": text}, "all on the board")
        odd = f"tasks:\n  - {{id: odd-{uniq}, name: Odd, required_skills: [nobody-has-{uniq}]}}\n"
        loaded = await c.ok("load_project", {"text": odd, "source": "odd.yaml"}, "with warnings")
        assert loaded["warnings"][0]["task_id"] == f"odd-{uniq}", loaded
        listed = await c.ok("list_tasks", {"limit": 1}, "a page with more")
        assert listed["next_cursor"], listed
        assert len(listed["tasks"]) == 1, listed
        seen = {t["task_id"] for t in listed["tasks"]}
        while "next_cursor" in listed:
            listed = await c.ok(
                "list_tasks", {"limit": 200, "cursor": listed["next_cursor"]}, "the last page"
            )
            seen |= {t["task_id"] for t in listed["tasks"]}
        assert {build, tests, docs, spare, extra} <= seen
        await c.ok("rerun_task", {"task_id": extra}, "already queued")
        rerun = await c.ok("rerun_task", {"task_id": build, "reason": "new base image"}, "done")
        assert rerun["requeued"] == [build], rerun
        await c.ok("rerun_task", {"task_id": docs, "dependents": True}, "blocked with dependents")
        await c.refused("rerun_task", {"task_id": f"nope-{uniq}"}, "task_not_found")
        await c.refused("load_project", {"text": "tasks: [oops"}, "invalid_argument")

        await c.ok("deregister_agent", {"agent_id": v}, "holding")  # v holds spare
        await c.ok("deregister_agent", {"agent_id": w}, "idle")
        await c.refused("heartbeat", {"agent_id": w}, "agent_not_registered")  # until it registers again

    assert c.shapes == SHAPES
    assert c.codes == CODES_FROM_CALLS


async def test_unauthorized_and_internal_error_carry_the_error_shape(stub_factory: Any) -> None:
    """The two codes a well-formed call cannot provoke on a healthy stub: a missing token, a broken database."""
    token = "contract-token"
    guarded = stub_factory(env={"PM_AGENT_TOKEN": token})
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            guarded.url,
            headers={"accept": "application/json, text/event-stream", "content-type": "application/json"},
            content=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "ping", "arguments": {}},
                }
            ),
        )
    assert response.status_code == 401
    unauthorized = response.json()["error"]["data"]
    assert unauthorized["error"] == "unauthorized"
    assert problems(ErrorResult, unauthorized) == []

    broken = stub_factory(guarded.db.with_name("broken.db"))
    load_tasks(broken.db, task("t", "s"))
    async with mcp.Client(broken.url) as client:
        await call_tool(
            client, "register_agent", {"agent_id": "w", "name": "W", "role": "r", "skills": ["s"]}
        )
        await call_tool(client, "request_next_task", {"agent_id": "w"})
        conn = sqlite3.connect(str(broken.db), timeout=15)
        conn.execute("DROP TABLE artifacts")  # what a bug (or a hand-edited file) would do to the stub
        conn.close()
        answer = await call_tool(
            client,
            "log_artifact",
            {"agent_id": "w", "task_id": "t", "artifact_type": "x", "description": "d"},
        )
    assert answer["error"] == "internal_error"
    assert "no such table" in answer["message"]
    assert problems(ErrorResult, answer) == []
    assert CODES_FROM_CALLS | {"unauthorized", "internal_error"} == set(ERROR_CODES)
