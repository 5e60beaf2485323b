"""The documentation worker on the real stub, in memory (`pm_stub`, pm_worker's public test kit).

What the unit tests cannot show: a tutorial task finds the API reference through the
`api_docs` artifact its dependency logged on the board, and a bad path ends as a blocker
carrying the stub's suggestion.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from documentation_worker.worker import DocumentationWorker
from pm_worker.testing import StubKit

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SKILLS = ["documentation"]


async def test_api_then_tutorial_through_the_board(pm_stub: StubKit) -> None:
    shutil.copytree(FIXTURES / "shapes", pm_stub.workspace / "shapes")
    run = await pm_stub.run(
        DocumentationWorker,
        tasks=[
            {
                "id": "api",
                "name": "API reference",
                "required_skills": SKILLS,
                "payload": {"path": "shapes", "output": "docs/api"},
            },
            {
                "id": "tutorial",
                "name": "Getting started",
                "required_skills": SKILLS,
                "dependencies": ["api"],
                "payload": {"kind": "tutorial", "path": "shapes", "output": "docs/start.md"},
            },
            {
                "id": "nowhere",
                "name": "Docs for a missing package",
                "required_skills": SKILLS,
                "payload": {"path": "no-such-package"},
            },
        ],
    )
    assert run.status("api") == "done"
    assert run.status("tutorial") == "done"
    [api_docs] = run.tasks["api"].artifacts
    assert api_docs.artifact_type == "api_docs"
    assert api_docs.location == "docs/api/"
    assert (pm_stub.workspace / "docs" / "api" / "index.md").is_file()
    # the tutorial links the reference it learnt of from its dependency's artifact
    assert [a.task_id for a in run.tasks["tutorial"].dependency_artifacts] == ["api"]
    assert "api/index.md" in (pm_stub.workspace / "docs" / "start.md").read_text()
    assert run.status("nowhere") == "blocked"
    [blocker] = run.tasks["nowhere"].blockers
    assert "no-such-package" in blocker.description
    assert blocker.resolution_suggestion
    assert run.counters["handled"] == 3
