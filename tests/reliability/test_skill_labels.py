"""Skill names with separators, and the number of `skills` series on /metrics (issue 24, item 6),
against real stub processes over real HTTP and the real CLI.

- a skill holding a comma (or a control character, or spaces at either end) is refused at load
  and at registration with a message that says what to send instead; nothing is written;
- the tutorial's `["python", "testing"]` still registers;
- past `PM_METRICS_MAX_SKILL_SETS` signatures, the later ones are summed in one `skills="OTHER"`
  series (the first seen keep theirs), and promtool accepts the exposition;
- a board written before the rule, holding a comma skill, shows no duplicate series.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import ProjectSpec, TaskSpec
from pm_agent_stub.testing import StubProcess, load_tasks, run_cli, tasks_yaml
from tests.dashboard.web import assert_promtool_accepts, http, parse_metrics
from tests.reliability.rpc import call_tool
from tests.reliability.skill_labels import skill_series


def register(stub: StubProcess, skills: list[str]) -> dict[str, object]:
    with httpx2.Client(timeout=60) as client:
        return call_tool(
            client, stub.url, "register_agent", {"agent_id": "w", "name": "W", "role": "r", "skills": skills}
        )


@pytest.mark.parametrize(
    ("skill", "says"),
    [
        ("testing,unit-testing", "give each skill on its own: ['testing', 'unit-testing']"),
        ("unit\ttesting", "must be printable text"),
        (" testing", "remove the spaces"),
    ],
)
def test_a_skill_with_a_separator_is_refused_at_registration_and_at_load(
    stub_factory: Callable[..., StubProcess], tmp_path: Path, skill: str, says: str
) -> None:
    stub = stub_factory()
    refused = register(stub, ["python", skill])
    assert refused["error"] == "invalid_argument"
    assert "skills.1" in str(refused["message"])
    assert says in str(refused["message"])
    project = tmp_path / "p.yaml"
    project.write_text(tasks_yaml({"id": "t", "name": "T", "required_skills": [skill]}))
    loaded = run_cli("load", str(project), "--url", stub.url)
    assert loaded.returncode == 2, loaded.stdout + loaded.stderr
    assert "task 't' field 'required_skills[0]'" in loaded.stderr
    assert says in loaded.stderr
    status = http(stub.port, "GET", "/dashboard/api/board").json()
    assert status["project_status"]["total_tasks"] == 0
    assert status["workers"]["total"] == 0


def test_the_tutorials_skills_still_register(stub_factory: Callable[..., StubProcess]) -> None:
    stub = stub_factory()
    answer = register(stub, ["python", "testing"])
    assert answer["success"] is True
    assert register(stub, ["Unit Testing", "ci/cd", "c++"])["success"] is True  # spaces inside, symbols


def test_skill_sets_past_the_cap_fold_into_one_other_series(stub_factory: Callable[..., StubProcess]) -> None:
    stub = stub_factory(env={"PM_METRICS_MAX_SKILL_SETS": "5"})
    load_tasks(
        stub.db, *({"id": f"t{i}", "name": "T", "required_skills": [f"set-{i:02d}"]} for i in range(12))
    )
    load_tasks(stub.db, {"id": "again", "name": "T", "required_skills": ["set-00"]})
    scrape = http(stub.port, "GET", "/metrics")
    series = skill_series(scrape.text)
    ready = sorted(label for family, label in series if family == "pm_agent_ready_tasks")
    assert ready == ["OTHER", "set-00", "set-01", "set-02", "set-03", "set-04"]  # the first seen keep theirs
    samples = parse_metrics(scrape.text)
    assert samples[("pm_agent_ready_tasks", (("skills", "OTHER"),))] == 7
    assert samples[("pm_agent_ready_tasks", (("skills", "set-00"),))] == 2
    assert samples[("pm_agent_in_progress_tasks", (("skills", "OTHER"),))] == 0
    assert samples[("pm_agent_skill_sets", ())] == 12
    assert_promtool_accepts(scrape.body)


def test_a_comma_skill_on_an_older_board_makes_no_duplicate_series(
    stub_factory: Callable[..., StubProcess], tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    board = Board(connect(db))
    old = TaskSpec.model_construct(  # as an older stub accepted it, unchecked
        id="old", name="Old", description="", instructions="", priority="medium",
        required_skills=["testing,unit-testing"], labels=[], dependencies=[], estimated_hours=None, payload={},
    )  # fmt: skip
    board.load_project(ProjectSpec.model_construct(project="p", tasks=[old]), "old.yaml")
    board.close()
    load_tasks(db, {"id": "new", "name": "New", "required_skills": ["testing", "unit-testing"]})
    stub = stub_factory(db)
    scrape = http(stub.port, "GET", "/metrics")
    ready = [label for family, label in skill_series(scrape.text) if family == "pm_agent_ready_tasks"]
    assert sorted(ready) == ["OTHER", "testing,unit-testing"]  # before: "testing,unit-testing" twice
    samples = parse_metrics(scrape.text)
    assert samples[("pm_agent_ready_tasks", (("skills", "testing,unit-testing"),))] == 1
    assert_promtool_accepts(scrape.body)
