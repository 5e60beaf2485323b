"""Issue 25: a task whose payload names no folder runs in its project's folder, and the load says so.

`load FILE` (what `make load`, `make up PROJECT_FILE=...` and `make demo` use) against a real
stub over HTTP: each task its workers read a folder for (`path`; `context` for docker) and
that gives none gets the folder holding the file, with a warning naming the task, the folder
and the key; tasks that name one, and tasks any kind of worker might take, are left alone.
The journey itself (pytest running inside the project, nothing written next to it) is in
test_demo_edges.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import StubProcess, run_cli, start_stub, task_context

FLEET = """project: shop
tasks:
  - {id: tests, name: Tests, required_skills: [testing]}
  - {id: api-docs, name: Docs, required_skills: [documentation]}
  - {id: image, name: Image, required_skills: [docker], payload: {tag: "shop:latest"}}
  - {id: lint, name: Lint, required_skills: [testing], payload: {path: shop/src, command: "ruff check ."}}
  - {id: anyone, name: Anyone, payload: {}}
  - {id: top, name: Top, required_skills: [pytest], payload: {path: "."}}
"""


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StubProcess]:
    running = start_stub(tmp_path / "board.db")
    yield running
    running.stop()


def fleet_file(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "shop"
    folder.mkdir(parents=True)
    (folder / "fleet.yaml").write_text(FLEET)
    return folder / "fleet.yaml"


def payloads(stub: StubProcess, *task_ids: str) -> dict[str, object]:
    return {t: task_context(stub, t)["task"]["payload"] for t in task_ids}


def test_a_task_without_a_folder_gets_the_projects_and_a_warning(stub: StubProcess, tmp_path: Path) -> None:
    fleet = fleet_file(tmp_path)
    loaded = run_cli("load", str(fleet), "--url", stub.url)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 6 new task(s)" in loaded.stderr
    assert payloads(stub, "tests", "api-docs", "image", "lint", "anyone", "top") == {
        "tests": {"path": "shop"},
        "api-docs": {"path": "shop"},
        "image": {"tag": "shop:latest", "context": "shop"},
        "lint": {"path": "shop/src", "command": "ruff check ."},  # named one: as written
        "anyone": {},  # any worker may take it: the key would depend on who (and it is warned about)
        "top": {"path": "."},  # the workspace's top, chosen on purpose
    }
    told = loaded.stderr
    assert (
        "warning: task 'tests': no payload path: it runs in 'shop' (the folder holding fleet.yaml), "
        "not the top of the workspace; give `path:` to choose another folder"
    ) in told
    assert "warning: task 'api-docs': no payload path: it runs in 'shop'" in told
    assert "warning: task 'image': no payload context: it runs in 'shop'" in told
    for quiet in ("lint", "top"):
        assert f"warning: task '{quiet}'" not in told

    again = run_cli("load", str(fleet), "--url", stub.url)  # nothing added: nothing to say about folders
    assert again.returncode == 0, again.stderr
    assert "no payload path" not in again.stderr


def test_default_path_names_another_folder_or_keeps_the_top(tmp_path: Path) -> None:
    fleet = fleet_file(tmp_path)
    for given, expected in (("shop/app", {"path": "shop/app"}), (".", {})):
        stub = start_stub(tmp_path / f"board-{len(given)}.db")
        try:
            loaded = run_cli("load", str(fleet), "--url", stub.url, "--default-path", given)
            assert loaded.returncode == 0, loaded.stderr
            assert payloads(stub, "tests") == {"tests": expected}
            assert ("no payload path" in loaded.stderr) == (given != ".")
            if given != ".":
                assert "it runs in 'shop/app' (--default-path)" in loaded.stderr
        finally:
            stub.stop()


def test_a_bad_file_is_still_refused_with_its_line_and_nothing_sent(
    stub: StubProcess, tmp_path: Path
) -> None:
    fleet = fleet_file(tmp_path)
    fleet.write_text("tasks:\n  - {id: tests, name: Tests, required_skills: [testing], colour: red}\n")
    refused = run_cli("load", str(fleet), "--url", stub.url)
    assert refused.returncode == 2
    assert "task 'tests' field 'colour': unknown field" in refused.stderr
