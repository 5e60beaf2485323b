"""Another MCP client than ours: the official TypeScript SDK against the real stub over HTTP.

That client validates every success's `structuredContent` against the tool's advertised
`outputSchema` (its `callTool` throws on a mismatch), and checks any `structuredContent` an
error carries against it too: so every tool, in a scenario that calls all of them and
provokes errors, must come back through it as declared. Needs Node and the SDK installed
beside the script (`npm ci --prefix tests/stub/ts_client`); skipped, saying so, without them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import load_tasks, task
from pm_protocol import TOOLS, ErrorResult, tools
from pm_protocol.conformance import problems

CLIENT = Path(__file__).with_name("ts_client")
INSTALL = "npm ci --prefix tests/stub/ts_client"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip(
            "node is not installed (Debian: apt-get install nodejs npm); the TypeScript SDK check needs it"
        )
    if not (CLIENT / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.skip(f"the MCP TypeScript SDK is not installed beside the check: run `{INSTALL}`")
    return found


def scenario(agent: str) -> list[dict[str, Any]]:
    """Every tool at least once, in an order whose answers are known on a fresh board; errors last."""
    w = {"agent_id": agent}

    def progress(task_id: str, status: str, pct: int, **more: Any) -> dict[str, Any]:
        report = {"task_id": task_id, "status": status, "progress": pct, "message": f"{status} {pct}"}
        return {"tool": "report_task_progress", "arguments": {**w, **report, **more}}

    calls = [
        ("register_agent", {**w, "name": "TS", "role": "checker", "skills": ["ts"]}),
        ("ping", {"echo": "from node"}),
        ("request_next_task", w),  # build
        progress("build", "in_progress", 40, checkpoint={"step": 1}),
        ("heartbeat", w),
        (
            "log_artifact",
            {
                **w,
                "task_id": "build",
                "artifact_type": "image",
                "description": "the image",
                "location": "reg/app:1",
                "data": {"digest": "x"},
            },
        ),
        ("get_artifact", {"artifact_id": 1}),
        progress("build", "completed", 100),
        ("request_next_task", w),  # tests, with build's artifact
        ("report_blocker", {**w, "task_id": "tests", "blocker_description": "3 failed", "severity": "high"}),
        ("request_next_task", w),  # docs
        ("release_task", {**w, "task_id": "docs", "reason": "stopping"}),
        ("resolve_blocker", {"task_id": "tests", "resolution": "fixed"}),
        ("get_task_context", {"task_id": "tests"}),
        ("get_project_status", {}),
        ("get_agent_status", w),
        ("list_registered_agents", {"limit": 5}),
        ("load_project", {"text": "tasks:\n  - {id: extra, name: Extra, required_skills: [ts]}\n"}),
        ("list_tasks", {"limit": 2}),
        ("rerun_task", {"task_id": "build", "reason": "again"}),
        ("deregister_agent", w),
        ("heartbeat", w),  # agent_not_registered
        ("get_task_context", {"task_id": "nope"}),  # task_not_found
        ("register_agent", {"agent_id": agent}),  # invalid_argument
    ]
    return [c if isinstance(c, dict) else {"tool": c[0], "arguments": c[1]} for c in calls]


def test_the_typescript_sdk_reads_every_answer_as_declared(stub_factory: Any, tmp_path: Path) -> None:
    executable = node()
    stub = stub_factory()
    load_tasks(
        stub.db,
        task("build", "ts", priority="urgent"),
        task("tests", "ts", priority="high", dependencies=["build"]),
        task("docs", "ts", priority="low"),
    )
    calls = scenario("ts-1")
    assert {c["tool"] for c in calls} == {t.name for t in TOOLS}
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    run = subprocess.run(
        [executable, str(CLIENT / "check.mjs"), stub.url, str(tmp_path / "calls.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    seen = json.loads(run.stdout)
    assert [t["name"] for t in seen["tools"]] == [t.name for t in TOOLS]
    assert all(t["hasOutputSchema"] for t in seen["tools"]), seen["tools"]
    assert (
        seen["tools"][[t.name for t in TOOLS].index("rerun_task")]["annotations"]["destructiveHint"] is True
    )
    answers = seen["calls"]
    errors = [a for a in answers if a["isError"]]
    assert [a["tool"] for a in errors] == ["heartbeat", "get_task_context", "register_agent"], answers
    for answer in answers:
        body = json.loads(answer["text"])  # what a client reading text gets: the same JSON
        if answer["isError"]:
            assert answer["structured"] is None, answer
            assert problems(ErrorResult, body) == [], answer
        else:
            assert answer["structured"] == body, answer
            assert problems(tools.TOOLS_BY_NAME[answer["tool"]].result, body) == [], answer
    assert [json.loads(a["text"])["error"] for a in errors] == [
        "agent_not_registered",
        "task_not_found",
        "invalid_argument",
    ]
    offers = [json.loads(a["text"]) for a in answers if a["tool"] == "request_next_task"]
    assert [o["assignment"]["task_id"] for o in offers] == ["build", "tests", "docs"]
    assert offers[1]["assignment"]["dependency_artifacts"][0]["data"] == {"digest": "x"}
