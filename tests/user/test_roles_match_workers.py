"""`pm_protocol.roles` is data the stub checks project files against; the workers' own
classes are the truth. This keeps the two in step: a new payload key or skill in a worker
that the table lacks fails here, not as a wrongly refused project file."""

from __future__ import annotations

import pytest

from devops_worker.payload import BuildPayload
from devops_worker.worker import DevOpsWorker
from documentation_worker.worker import DocumentationWorker
from llm_worker.worker import LLMWorker
from pm_protocol.roles import ROLES, ROLES_BY_NAME
from pm_worker import Worker
from testing_worker.worker import TestingWorker

WORKERS: tuple[type[Worker], ...] = (DocumentationWorker, TestingWorker, DevOpsWorker, LLMWorker)


def test_every_worker_has_its_role_in_the_table_and_nothing_else_is_there() -> None:
    assert {w.role for w in WORKERS} == {r.name for r in ROLES}


@pytest.mark.parametrize("worker", WORKERS, ids=lambda w: w.role)
def test_the_tables_skills_are_the_workers_default_skills(worker: type[Worker]) -> None:
    assert ROLES_BY_NAME[worker.role].skills == {s.lower() for s in worker.skills}


@pytest.mark.parametrize("worker", WORKERS, ids=lambda w: w.role)
def test_the_tables_payload_keys_are_the_workers_payload_model(worker: type[Worker]) -> None:
    role = ROLES_BY_NAME[worker.role]
    # The devops worker parses its payload itself (BuildPayload) where it has no payload_model.
    model = worker.payload_model or (BuildPayload if worker is DevOpsWorker else None)
    if role.payload_keys is None:
        assert model is None, f"{worker.role} has a payload model: list its keys in pm_protocol.roles"
        return
    if model is None:
        pytest.skip(
            f"{worker.role} reads its payload without a payload_model yet (its model is on branch "
            "i17-workers); the table lists the keys it reads"
        )
    assert role.payload_keys == set(model.model_fields)


def test_only_the_llm_role_is_optional() -> None:
    assert [r.name for r in ROLES if r.optional] == ["llm"]


async def test_a_test_task_without_skills_is_not_turned_into_api_docs(
    tmp_path: object, pm_stub: object
) -> None:
    """Issue 12 item 8: a test task without `required_skills`, taken by the documentation worker.
    The load warns (tests/stub/test_stub_load_checks.py); and should it be taken, the worker's
    payload model refuses `command` instead of writing API docs and reporting done."""
    from pm_worker.testing import StubKit

    kit: StubKit = pm_stub  # type: ignore[assignment]
    (kit.workspace / "app").mkdir()
    (kit.workspace / "app" / "m.py").write_text("def f():\n    return 1\n")
    run = await kit.run(
        DocumentationWorker,
        tasks=[
            {
                "id": "tests",
                "name": "Run the tests",
                "payload": {"path": "app", "command": "python -m pytest -q"},
            },
        ],
    )
    assert run.status("tests") == "blocked"
    assert "unknown field 'command'" in run.tasks["tests"].blockers[0].description
    assert not (kit.workspace / "app" / "docs").exists()
