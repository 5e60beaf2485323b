"""The real `python -m documentation_worker` process against the real stub process over HTTP.

The worker documents the fixture package in a temporary workspace; the generated pages are
checked against facts read straight from the fixture's source here (not through the
worker's own model), and the board is read back through the protocol's tools.
"""

from __future__ import annotations

import ast
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, task_context
from tests.integration.workerproc import run_worker_to_end

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WORKER_TIMEOUT = 120.0


def run_worker(
    stub: StubProcess, workspace: Path, skill: str, max_tasks: int, **extra: str
) -> tuple[int, str]:
    """Run the worker until it has handled `max_tasks` tasks (it then exits by itself); (exit code, log).

    Its own skills plus one only this test's tasks require: no other test's task reaches it.
    `extra` are more environment variables (e.g. ``DOCS_MAX_FILES="3"``)."""
    return run_worker_to_end(
        "documentation_worker",
        stub,
        workspace,
        agent_id=f"docs-it-{skill}",
        skills=f"documentation,markdown,api-docs,tutorials,{skill}",
        max_tasks=max_tasks,
        timeout=WORKER_TIMEOUT,
        clear=("DOCS_",),
        **extra,
    )


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def source_facts(path: Path) -> Iterator[tuple[str, str, str | None]]:
    """(name, def line without body, first docstring line) of each public top-level function, from the file itself."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            header = ast.unparse(node).split("\n")
            def_line = next(line for line in header if line.startswith(("def ", "async def ")))
            doc = ast.get_docstring(node)
            yield node.name, def_line.rstrip(":"), doc.splitlines()[0] if doc else None


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", root / "lib" / "shapes")
    return root


def test_api_reference_and_tutorial_over_the_wire(stub: StubProcess, workspace: Path) -> None:
    skill = f"docs-{uuid.uuid4().hex[:8]}"
    api_id, tutorial_id = f"{skill}-api", f"{skill}-tutorial"
    load_tasks(
        stub.db,
        {
            "id": api_id,
            "name": "API reference for shapes",
            "required_skills": [skill],
            "payload": {"path": "lib/shapes", "output": "site/api/"},
        },
        {
            "id": tutorial_id,
            "name": "Getting started with shapes",
            "required_skills": [skill],
            "dependencies": [api_id],
            "payload": {"kind": "tutorial", "path": "lib/shapes", "output": "site/getting-started.md"},
        },
    )
    code, log = run_worker(stub, workspace, skill, max_tasks=2)
    assert code == 0, log

    api = task_context(stub, api_id)
    assert api["task"]["status"] == "done", api
    assert api["task"]["progress"] == 100
    messages = [entry["message"] for entry in api["progress_log"]]
    assert messages[0] == "Analysing lib/shapes"
    assert "Generated 6 module pages and the index" in messages
    assert messages[-1].startswith("Wrote the API reference for shapes to site/api/: 6 module pages")
    assert api["task"]["checkpoint"]["written"] == sorted(
        p.name for p in (workspace / "site" / "api").glob("shapes*.md")
    )
    [artifact] = api["artifacts"]
    assert (artifact["artifact_type"], artifact["location"]) == ("api_docs", "site/api/")

    # every public function of every module is on its module's page with its def line and summary
    out = workspace / "site" / "api"
    for path in sorted((workspace / "lib" / "shapes").rglob("*.py")):
        rel = path.relative_to(workspace / "lib").with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        page = (out / f"{module}.md").read_text()
        assert page.startswith(f"# `{module}`\n"), module
        module_doc = ast.get_docstring(ast.parse(path.read_text()))
        if module_doc:
            assert module_doc.splitlines()[0] in page
        for name, def_line, summary in source_facts(path):
            assert f"### `{name}`" in page, (module, name)
            assert squash(def_line) in squash(page), (module, def_line)
            if summary:
                assert summary in page, (module, name)
        index = (out / "index.md").read_text()
        assert f"[`{module}`]({module}.md)" in index

    tutorial = task_context(stub, tutorial_id)
    assert tutorial["task"]["status"] == "done", tutorial
    # the tutorial found the API reference through the artifact of the task it depends on
    assert tutorial["dependency_artifacts"][0]["artifact_type"] == "api_docs"
    page = (workspace / "site" / "getting-started.md").read_text()
    assert "[API reference](api/index.md)" in page
    assert ">>> volume(2)\n8" in page
    assert "- `volume(side: float) -> float`: The volume of a cube with edge ``side``." in page


def test_syntax_error_ends_as_a_blocker_naming_file_and_line(stub: StubProcess, workspace: Path) -> None:
    skill = f"docs-{uuid.uuid4().hex[:8]}"
    broken = workspace / "lib" / "shapes" / "solids" / "broken.py"
    broken.write_text('"""Half-written."""\n\n\ndef unfinished(x:\n    return x\n')
    load_tasks(
        stub.db,
        {
            "id": f"{skill}-api",
            "name": "API reference",
            "required_skills": [skill],
            "payload": {"path": "lib/shapes"},
        },
    )
    code, log = run_worker(stub, workspace, skill, max_tasks=1)
    assert code == 0, log

    context = task_context(stub, f"{skill}-api")
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    assert blocker["description"].startswith("lib/shapes/solids/broken.py, line 4: syntax error")
    assert blocker["severity"] == "high"
    assert blocker["resolution_suggestion"]
    assert not (workspace / "docs").exists()


def test_report_page_gets_big_and_many_dependency_artifacts(stub: StubProcess, workspace: Path) -> None:
    """Issue 17: big artifact data travels as metadata and many artifacts come in pages; the
    report page still has every failing test (fetched with get_artifact) and every artifact."""
    skill = f"docs-{uuid.uuid4().hex[:8]}"
    tests_id, build_id, report_id = f"{skill}-tests", f"{skill}-build", f"{skill}-report"
    producer_skill = f"nobody-{skill}"  # only this test's own agent has it
    load_tasks(
        stub.db,
        {"id": tests_id, "name": "tests", "required_skills": [producer_skill]},
        {"id": build_id, "name": "build", "required_skills": [producer_skill], "priority": "low"},
        {
            "id": report_id,
            "name": "Report",
            "required_skills": [skill],
            "dependencies": [tests_id, build_id],
            "payload": {"kind": "report", "output": "docs/report.md", "title": "Results"},
        },
    )
    failures = [
        {"id": f"tests/test_calc.py::test_case_{i}", "message": f"assert {i} == -1"} for i in range(400)
    ]

    async def produce() -> dict[str, Any]:
        agent = f"producer-{skill}"
        async with mcp.Client(stub.url) as client:
            await call_tool(
                client,
                "register_agent",
                {"agent_id": agent, "name": "P", "role": "r", "skills": [producer_skill]},
            )
            for task_id, files in ((tests_id, range(60)), (build_id, range(60, 120))):
                assert (await call_tool(client, "request_next_task", {"agent_id": agent}))["has_task"]
                base = {"agent_id": agent, "task_id": task_id}
                if task_id == tests_id:
                    data = {"passed": 3, "failed": 400, "skipped": 0, "errors": 0, "failures": failures}
                    logged = await call_tool(
                        client,
                        "log_artifact",
                        {**base, "artifact_type": "test_report", "description": "unit tests", "data": data},
                    )
                    assert logged["success"], logged
                for i in files:
                    logged = await call_tool(
                        client,
                        "log_artifact",
                        {
                            **base,
                            "artifact_type": "file",
                            "description": f"file {i}",
                            "location": f"out/file-{i}.txt",
                        },
                    )
                    assert logged["success"], logged
                done = {**base, "status": "completed", "progress": 100, "message": "done"}
                await call_tool(client, "report_task_progress", done)
            return await call_tool(client, "get_task_context", {"task_id": report_id})

    before = anyio.run(produce)
    [report_meta] = [a for a in before["dependency_artifacts"] if a["artifact_type"] == "test_report"]
    assert (report_meta["data"], report_meta["data_included"]) == (None, False)  # the worker must fetch it
    assert "next_cursor" in before  # and page: 121 artifacts

    code, log = run_worker(stub, workspace, skill, max_tasks=1)
    assert code == 0, log
    assert task_context(stub, report_id)["task"]["status"] == "done"
    page = (workspace / "docs" / "report.md").read_text()
    assert f"| `{tests_id}` | 3 | 400 | 0 | 0 |" in page
    assert all(f"- `tests/test_calc.py::test_case_{i}`: assert {i} == -1" in page for i in range(400))
    for i in range(120):
        assert f"- `file` from `{tests_id if i < 60 else build_id}` at `out/file-{i}.txt`: file {i}" in page
