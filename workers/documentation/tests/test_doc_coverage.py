"""The pages hold every public name griffe lists, and no internal link leads nowhere (issue 25).

The real `python -m documentation_worker` process, against the real stub over HTTP,
documents the fixture packages; its pages are then read back as Markdown and held to
griffe loading the same folder from disk, as mkdocstrings does. `patterns` reproduces each
failure seen on real packages (more-itertools, attrs, toolz); ``python -m bench.api_coverage``
measures the same on real packages from PyPI (figures in docs/workers.md).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_doc_integration import run_worker

from documentation_worker.coverage import dead_links, documented_names, griffe_public_names
from pm_agent_stub.testing import StubProcess, load_tasks, task_context

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PACKAGES = ("patterns", "shapes")


@pytest.fixture(scope="module")
def documented(stub: StubProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One worker run documenting each fixture package with the defaults, and `patterns` with everything."""
    ws = tmp_path_factory.mktemp("docs-coverage") / "workspace"
    for name in PACKAGES:
        shutil.copytree(FIXTURES / name, ws / "lib" / name)
    skill = f"coverage-{uuid.uuid4().hex[:8]}"
    payloads = {name: {"path": f"lib/{name}", "output": f"site/{name}/"} for name in PACKAGES}
    payloads["everything"] = {
        "path": "lib/patterns",
        "output": "site/everything/",
        "include_tests": True,
        "include_private": True,
    }
    load_tasks(
        stub.db,
        *(
            {
                "id": f"{skill}-{name}",
                "name": f"Docs for {name}",
                "required_skills": [skill],
                "payload": payload,
            }
            for name, payload in payloads.items()
        ),
    )
    code, log = run_worker(stub, ws, skill, max_tasks=len(payloads))
    assert code == 0, log
    contexts = {name: task_context(stub, f"{skill}-{name}") for name in payloads}
    for name, context in contexts.items():
        assert context["task"]["status"] == "done", (name, context["blockers"])
    pages = {name: {p.name: p.read_text() for p in (ws / "site" / name).glob("*.md")} for name in payloads}
    return {"workspace": ws, "contexts": contexts, "pages": pages}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_griffe_lists_is_on_a_page(documented: dict[str, Any], package: str) -> None:
    reference = griffe_public_names(documented["workspace"] / "lib", [package])
    ours = documented_names(documented["pages"][package])
    assert sorted(set(reference) - ours) == []
    assert len(reference) > 20  # the reference did see the package


@pytest.mark.parametrize("package", [*PACKAGES, "everything"])
def test_no_internal_link_is_dead(documented: dict[str, Any], package: str) -> None:
    assert dead_links(documented["pages"][package]) == []


def test_issue_25s_failures_on_the_pages(documented: dict[str, Any]) -> None:
    pages = documented["pages"]["patterns"]
    # tests and private modules get no page
    assert sorted(pages) == [
        "index.md",
        "patterns.api.md",
        "patterns.md",
        "patterns.more.md",
        "patterns.recipes.md",
        "patterns.styles.md",
    ]
    package = pages["patterns.md"]
    assert "No public" not in package
    assert (
        '- <a id="patterns.batched"></a>[`batched`](patterns.recipes.md#patterns.recipes.batched), '
        "function `patterns.recipes.batched`: Batch data into tuples of length *n*."
    ) in package
    # defined under if/else and try/except/else, docstrings assigned with __doc__
    recipes = pages["patterns.recipes.md"]
    assert '```pycon\n>>> list(batched("ABCDE", 2))' in recipes
    assert "Return successive overlapping pairs taken from *iterable*." in recipes
    # the class more.py exports but recipes.py does not: one full entry, the link to it lives
    assert "[`UnequalError`](patterns.md#patterns.UnequalError)" in pages["patterns.more.md"]
    assert '<a id="patterns.UnequalError"></a>\n\n### `UnequalError`' in package
    # objects of the private module, in full where the public module exports them
    assert "*Defined as `patterns._impl.Engine`.*" in pages["patterns.api.md"]
    message = documented["contexts"]["patterns"]["progress_log"][-1]["message"]
    assert message.endswith(
        "(left out as tests: lib/patterns/conftest.py; lib/patterns/tests/; "
        "payload.include_tests documents them)"
    )


def test_include_tests_and_private_document_them_too(documented: dict[str, Any]) -> None:
    pages = documented["pages"]["everything"]
    assert {"patterns._impl.md", "patterns.tests.test_more.md", "patterns.conftest.md"} <= set(pages)
    assert '<a id="patterns.recipes._batched"></a>' in pages["patterns.recipes.md"]
