"""The tutorial's stdio flow: `StdioServerParameters(command="python", args=["pm_agent_mcp_server.py"])`
from the repository root, with `ClientSession` and `json.loads(result.content[0].text)`."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import mcp
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, read_events, task
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.anyio


def tutorial_params(db: Path) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` = this venv
    env["PM_AGENT_DB"] = str(db)
    return StdioServerParameters(
        command="python", args=["pm_agent_mcp_server.py"], cwd=str(REPO_ROOT), env=env
    )


def load_tutorial_worker() -> Any:
    spec = importlib.util.spec_from_file_location(
        "tutorial_worker", REPO_ROOT / "examples" / "tutorial_worker.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DocumentationWorker


async def test_tutorial_flow_over_stdio(tmp_path: Path) -> None:
    db = tmp_path / "stdio.db"
    load_tasks(
        db,
        task("api-docs", "documentation", name="Document the REST API"),
        task("guide", "documentation", name="Write the user guide", priority="low"),
    )
    async with stdio_client(tutorial_params(db)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        agent = "doc-worker-001"
        result = await session.call_tool("register_agent", {
            "agent_id": agent, "name": "Documentation Worker", "role": "Documentation Specialist",
            "skills": ["documentation", "markdown", "api-docs", "tutorials"]})  # fmt: skip
        assert json.loads(result.content[0].text).get("success")

        response = json.loads(
            (await session.call_tool("request_next_task", {"agent_id": agent})).content[0].text
        )
        assert response.get("has_task")
        task_info = response["assignment"]
        assert task_info["task_id"] == "api-docs"
        assert task_info["task_name"] == "Document the REST API"
        for progress, message in (
            (0, "Starting documentation task"),
            (25, "Analyzing API endpoints"),
            (75, "examples"),
        ):
            ack = json.loads((await session.call_tool("report_task_progress", {
                "agent_id": agent, "task_id": "api-docs", "status": "in_progress",
                "progress": progress, "message": message})).content[0].text)  # fmt: skip
            assert ack["acknowledged"]
            assert ack["status"] == "progress_recorded"
        done = json.loads((await session.call_tool("report_task_progress", {
            "agent_id": agent, "task_id": "api-docs", "status": "completed", "progress": 100,
            "message": "Documentation completed"})).content[0].text)  # fmt: skip
        assert done["status"] == "task_completed"

        # The tutorial's own class, unchanged: "guide" has no "api" in its name, so the tutorial
        # calls a method it never defines, catches the error and reports a blocker.
        worker = load_tutorial_worker()()
        await worker.register(session)
        await worker.work_cycle(session)
        ctx = json.loads((await session.call_tool("get_task_context", {"task_id": "guide"})).content[0].text)
        assert ctx["task"]["status"] == "blocked"
        (blocker,) = ctx["blockers"]
        assert "general_documentation" in blocker["description"]
        assert blocker["resolution_suggestion"]
        bad = await session.call_tool("report_task_progress", {"agent_id": agent})
        assert bad.is_error
        assert json.loads(bad.content[0].text)["error"] == "invalid_argument"
    assert len(read_events(db, kind="completed", task_id="api-docs")) == 1


async def test_stdio_stub_shares_the_board_with_an_http_stub_and_expires_leases(
    stub: StubProcess, uniq: str
) -> None:
    skill = f"s-{uniq}"
    load_tasks(stub.db, task(f"t-{uniq}", skill))
    params = tutorial_params(stub.db)
    assert params.env is not None
    params.env["PM_LEASE_SECONDS"] = "0.5"
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await call_tool(
            session, "register_agent", {"agent_id": f"io-{uniq}", "name": "n", "role": "r", "skills": [skill]}
        )
        got = await call_tool(session, "request_next_task", {"agent_id": f"io-{uniq}"})
        assert got["assignment"]["task_id"] == f"t-{uniq}"
        async with mcp.Client(stub.url) as http:
            seen = await call_tool(http, "get_agent_status", {"agent_id": f"io-{uniq}"})
            assert seen["agent_info"]["current_task"] == f"t-{uniq}"
        # The stdio stub's own sweep timer expires the 0.5 s lease; a long-poll over stdio sees it return.
        await call_tool(
            session,
            "register_agent",
            {"agent_id": f"io2-{uniq}", "name": "n", "role": "r", "skills": [skill]},
        )
        again = await call_tool(session, "request_next_task", {"agent_id": f"io2-{uniq}", "wait_seconds": 10})
        assert again["assignment"]["task_id"] == f"t-{uniq}"
        assert again["assignment"]["attempt"] == 2
