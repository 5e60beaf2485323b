"""DocumentationWorker.execute with a real TaskContext over a recording PM client."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from documentation_worker.output import MANIFEST
from documentation_worker.payload import DocsPayload
from documentation_worker.worker import DocumentationWorker
from pm_worker import Assignment, TaskBlocked, TaskContext, WorkerSettings
from pm_worker.payload import parse_payload

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).resolve().parent / "fixtures"

SHAPES_PAGES = [
    "shapes.md",
    "shapes.geometry.md",
    "shapes.side_effects.md",
    "shapes.solids.md",
    "shapes.solids.cube.md",
    "shapes.units.md",
]


def make_worker(workspace: Path) -> DocumentationWorker:
    return DocumentationWorker(WorkerSettings(workspace=workspace, agent_id="docs-test"))


def sent_artifact(fields: dict[str, Any]) -> dict[str, Any]:
    """An artifact as the stub sends it: every field present (those not given get plain values)."""
    return {
        "artifact_id": 1,
        "agent_id": "worker-1",
        "description": "",
        "location": None,
        "data": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        **fields,
    }


def make_task(payload: dict[str, Any], **fields: Any) -> Assignment:
    return Assignment(
        task_id=fields.pop("task_id", "docs"), task_name="Write docs", payload=payload, **fields
    )


def make_context(workspace: Path, pm: Any, task: Assignment) -> TaskContext:
    """What `pm_worker` hands `execute`: a context holding the payload checked with the worker's model."""
    ctx = TaskContext(pm, task, workspace)
    ctx.payload = parse_payload(DocsPayload, task.payload, task_id=task.task_id, role="documentation")
    return ctx


async def execute(workspace: Path, pm: Any, task: Assignment) -> str:
    return await make_worker(workspace).execute(task, make_context(workspace, pm, task))


async def test_identity() -> None:
    assert DocumentationWorker.role == "documentation"
    assert set(DocumentationWorker.skills) == {"documentation", "markdown", "api-docs", "tutorials"}


async def test_api_reference(workspace: Path, pm: Any) -> None:
    message = await execute(workspace, pm, make_task({"path": "shapes", "output": "out/api"}))
    out = workspace / "out" / "api"
    assert sorted(p.name for p in out.iterdir()) == sorted([*SHAPES_PAGES, "index.md", MANIFEST])
    assert "def area_of(shapes: Iterable[Shape]" in (out / "shapes.geometry.md").read_text()
    assert message.startswith("Wrote the API reference for shapes to out/api/: 6 module pages")

    # progress goes through analysing, generating and writing, never backwards
    values = [p for p, _, _ in pm.progress]
    assert values == sorted(values)
    messages = [m for _, m, _ in pm.progress]
    assert messages[0] == "Analysing shapes"
    assert messages[1].startswith("Analysed 6 modules of shapes")
    assert messages[2] == "Generated 6 module pages and the index"
    assert messages[-1] == "Writing pages: 6/6 (shapes.units.md)"
    # one checkpoint per page written, each naming every page written so far
    assert [len(cp["written"]) for cp in pm.checkpoints] == [1, 2, 3, 4, 5, 6]
    assert pm.checkpoints[-1] == {"kind": "api", "output": "out/api", "written": sorted(SHAPES_PAGES)}

    [artifact] = pm.artifacts
    assert artifact["artifact_type"] == "api_docs"
    assert artifact["location"] == "out/api/"
    assert artifact["data"]["index"] == "out/api/index.md"
    assert artifact["data"]["modules"] == 6
    assert artifact["data"]["pages"][0] == "out/api/shapes.md"


async def test_default_output_folder(workspace: Path, pm: Any) -> None:
    """Without `output`, pages go to docs/api/<package>/ inside the project (the top folder of `path`)."""
    await execute(workspace, pm, make_task({"path": "shapes/solids"}))
    assert not (workspace / "docs").exists()
    assert sorted(p.name for p in (workspace / "shapes" / "docs" / "api" / "solids").iterdir()) == [
        MANIFEST,
        "index.md",
        "solids.cube.md",
        "solids.md",
    ]


async def test_two_packages_of_one_project_never_share_a_folder(workspace: Path, pm: Any) -> None:
    """Issue 25: two tasks writing the default docs/api/ overwrote each other's index."""
    shutil.copytree(FIXTURES / "patterns", workspace / "shapes" / "patterns")
    await execute(workspace, pm, make_task({"path": "shapes/solids"}, task_id="a"))
    await execute(workspace, pm, make_task({"path": "shapes/patterns"}, task_id="b"))
    api = workspace / "shapes" / "docs" / "api"
    assert sorted(p.name for p in api.iterdir()) == ["patterns", "solids"]
    assert (api / "solids" / "index.md").read_text().startswith("# `solids` API reference")
    assert (api / "patterns" / "index.md").read_text().startswith("# `patterns` API reference")


async def test_another_sources_folder_is_refused_and_loses_nothing(workspace: Path, pm: Any) -> None:
    await execute(workspace, pm, make_task({"path": "shapes/solids", "output": "site/"}, task_id="a"))
    before = {p.name: p.read_bytes() for p in (workspace / "site").iterdir()}
    with pytest.raises(TaskBlocked) as info:
        await execute(workspace, pm, make_task({"path": "shapes", "output": "site/"}, task_id="b"))
    assert info.value.description == (
        "payload.output 'site/' holds the API reference of shapes/solids (written by task a); "
        "give this task its own payload.output, or delete that folder to reuse it"
    )
    assert {p.name: p.read_bytes() for p in (workspace / "site").iterdir()} == before


async def test_a_rerun_removes_the_pages_of_modules_that_are_gone_and_nothing_else(
    workspace: Path, pm: Any
) -> None:
    out = workspace / "site"
    await execute(workspace, pm, make_task({"path": "shapes", "output": "site/"}))
    (out / "notes.md").write_text("the user's own page\n")
    (workspace / "shapes" / "units.py").unlink()
    (workspace / "shapes" / "solids" / "cube.py").rename(workspace / "shapes" / "solids" / "box.py")
    message = await execute(workspace, pm, make_task({"path": "shapes", "output": "site/"}))
    assert (
        "removed 2 page(s) of modules that no longer exist (shapes.solids.cube.md, shapes.units.md)"
        in message
    )
    assert sorted(p.name for p in out.iterdir()) == [
        MANIFEST,
        "index.md",
        "notes.md",  # never ours: kept
        "shapes.geometry.md",
        "shapes.md",
        "shapes.side_effects.md",
        "shapes.solids.box.md",
        "shapes.solids.md",
    ]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["source"] == "shapes"
    assert "notes.md" not in manifest["pages"]
    assert pm.artifacts[-1]["data"]["stale_pages_removed"] == 2


async def test_tests_and_private_modules_are_left_out_unless_the_payload_asks(
    workspace: Path, pm: Any
) -> None:
    shutil.copytree(FIXTURES / "patterns", workspace / "patterns")
    message = await execute(workspace, pm, make_task({"path": "patterns", "output": "a/"}))
    assert sorted(p.name for p in (workspace / "a").glob("*.md")) == [
        "index.md",
        "patterns.api.md",
        "patterns.md",
        "patterns.more.md",
        "patterns.recipes.md",
        "patterns.styles.md",
    ]
    assert message.endswith(
        " (left out as tests: patterns/conftest.py; patterns/tests/; payload.include_tests documents them)"
    )
    payload = {"path": "patterns", "output": "b/", "include_tests": True, "include_private": True}
    await execute(workspace, pm, make_task(payload))
    pages = {p.name for p in (workspace / "b").glob("*.md")}
    assert {"patterns._impl.md", "patterns.tests.test_more.md", "patterns.conftest.md"} <= pages


async def test_resume_skips_pages_already_written(workspace: Path, pm: Any) -> None:
    out = workspace / "shapes" / "docs" / "api" / "shapes"
    out.mkdir(parents=True)
    (out / "shapes.md").write_text("KEPT FROM ATTEMPT 1\n")
    (out / "shapes.geometry.md").write_text("KEPT FROM ATTEMPT 1\n")
    checkpoint = {
        "kind": "api",
        "output": "shapes/docs/api/shapes/",
        "written": ["shapes.md", "shapes.geometry.md", "gone.md"],
    }
    task = make_task({"path": "shapes"}, attempt=2, checkpoint=checkpoint)
    message = await execute(workspace, pm, task)
    assert (out / "shapes.md").read_text() == "KEPT FROM ATTEMPT 1\n"
    assert (out / "shapes.geometry.md").read_text() == "KEPT FROM ATTEMPT 1\n"
    assert (out / "shapes.units.md").read_text().startswith("# `shapes.units`")
    assert len(pm.checkpoints) == 4  # only the four pages still missing were written
    assert pm.checkpoints[-1]["written"] == sorted(SHAPES_PAGES)
    assert "(2 kept from an earlier attempt)" in message


async def test_checkpoint_for_another_output_is_ignored(workspace: Path, pm: Any) -> None:
    out = workspace / "shapes" / "docs" / "api" / "shapes"
    out.mkdir(parents=True)
    (out / "shapes.md").write_text("STALE\n")
    task = make_task(
        {"path": "shapes"}, checkpoint={"kind": "api", "output": "elsewhere/", "written": ["shapes.md"]}
    )
    await execute(workspace, pm, task)
    assert (out / "shapes.md").read_text().startswith("# `shapes`")


async def test_syntax_error_blocks_naming_file_and_line(workspace: Path, pm: Any) -> None:
    (workspace / "shapes" / "solids" / "broken.py").write_text("x = 1\n\nclass Broken(:\n    pass\n")
    with pytest.raises(TaskBlocked) as info:
        await execute(workspace, pm, make_task({"path": "shapes"}))
    assert info.value.severity == "high"
    assert info.value.description.startswith("shapes/solids/broken.py, line 3: syntax error")
    assert not (workspace / "docs").exists()  # nothing half-written


async def test_stopping_saves_a_checkpoint_and_ends_cancelled(workspace: Path, pm: Any) -> None:
    task = make_task({"path": "shapes"})
    ctx = make_context(workspace, pm, task)
    ctx.stopping = True
    with pytest.raises(asyncio.CancelledError):
        await make_worker(workspace).execute(task, ctx)
    assert pm.checkpoints == [{"kind": "api", "output": "shapes/docs/api/shapes/", "written": []}]


async def test_tutorial_links_the_api_reference_from_its_artifact(workspace: Path, pm: Any) -> None:
    api = sent_artifact(
        {
            "artifact_type": "api_docs",
            "task_id": "api",
            "location": "site/api/",
            "data": {"index": "site/api/index.md"},
        }
    )
    task = make_task(
        {"kind": "tutorial", "path": "shapes", "output": "site/start.md"}, dependency_artifacts=[api]
    )
    message = await execute(workspace, pm, task)
    page = (workspace / "site" / "start.md").read_text()
    assert page.startswith("# Getting started with `shapes`")
    assert "- `volume(side: float) -> float`: The volume of a cube with edge ``side``." in page
    assert "[API reference](api/index.md)" in page
    assert message == (
        "Wrote a getting-started page for shapes to site/start.md: 6 modules, 5 functions, "
        "3 usage examples from docstrings"
    )
    [artifact] = pm.artifacts
    assert (artifact["artifact_type"], artifact["location"]) == ("tutorial", "site/start.md")
    assert artifact["data"]["api_docs"] == "api/index.md"


async def test_tutorial_output_must_be_markdown(workspace: Path, pm: Any) -> None:
    with pytest.raises(TaskBlocked, match=r"must name a \.md file"):
        await execute(workspace, pm, make_task({"kind": "tutorial", "path": "shapes", "output": "docs/"}))


async def test_report_from_dependency_artifacts(workspace: Path, pm: Any) -> None:
    (workspace / "reports").mkdir()
    (workspace / "reports" / "unit.xml").write_text("<testsuites/>")
    artifacts = [
        sent_artifact(
            {
                "artifact_type": "test_report",
                "task_id": "unit",
                "location": "reports/unit.xml",
                "data": {"passed": 14, "failed": 0, "skipped": 0, "errors": 0},
            }
        ),
        sent_artifact(
            {
                "artifact_type": "docker_image",
                "task_id": "build",
                "location": "demo:latest",
                "description": "image",
            }
        ),
    ]
    task = make_task(
        {"kind": "report", "output": "docs/report.md", "title": "Results"}, dependency_artifacts=artifacts
    )
    message = await execute(workspace, pm, task)
    page = (workspace / "docs" / "report.md").read_text()
    assert "| `unit` | 14 | 0 | 0 | 0 | `reports/unit.xml` |" in page
    assert "- `docker_image` from `build` at `demo:latest`: image" in page  # not a workspace path: no link
    assert message == "Wrote docs/report.md from 2 artifacts (1 test reports)"


async def test_report_without_artifacts_blocks(workspace: Path, pm: Any) -> None:
    with pytest.raises(TaskBlocked, match="nothing to report"):
        await execute(workspace, pm, make_task({"kind": "report"}, dependencies=["unit"]))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"kind": "poem"}, "unknown payload.kind 'poem'"),
        ({"path": "../outside"}, "leaves the workspace"),
        ({"path": "missing"}, "does not exist"),
        ({"path": "shapes", "output": "/etc/api"}, "leaves the workspace"),
        ({"path": 7}, "payload.path must be a non-empty string"),
        ({"path": "shapes", "include_tests": "yes"}, "include_tests"),
        (
            {"path": "shapes", "ouput": "site/"},
            r"unknown field 'ouput' \(accepted fields: kind, path, output, ",
        ),
        (
            {"kind": "tutorial", "path": "shapes", "api_docs": ["x"]},
            "payload.api_docs must be a non-empty string",
        ),
    ],
)
async def test_bad_payloads_block(workspace: Path, pm: Any, payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(TaskBlocked, match=problem):
        await execute(workspace, pm, make_task(payload))


async def test_folder_without_python_blocks(workspace: Path, pm: Any) -> None:
    (workspace / "empty").mkdir()
    with pytest.raises(TaskBlocked, match="no Python modules found in empty"):
        await execute(workspace, pm, make_task({"path": "empty"}))


async def test_two_tasks_on_one_folder_take_turns(workspace: Path, pm: Any) -> None:
    """Another task holds the folder (its flock): this one waits, says so, then writes."""
    out = workspace / "site"
    out.mkdir()
    other = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with capture_logs() as logs:
            running = asyncio.create_task(
                execute(workspace, pm, make_task({"path": "shapes", "output": "site/"}))
            )
            async with asyncio.timeout(60):
                while not any(e["event"] == "output_folder_busy" for e in logs):
                    await asyncio.sleep(0.01)
            assert not (out / "index.md").exists()
            fcntl.flock(other, fcntl.LOCK_UN)
            async with asyncio.timeout(60):
                await running
    finally:
        os.close(other)
    assert (out / "index.md").is_file()
