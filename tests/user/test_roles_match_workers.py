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
        pytest.skip(f"{worker.role} reads its payload without a payload_model yet (its model is on branch "
                    "i17-workers); the table lists the keys it reads")
    assert role.payload_keys == set(model.model_fields)


def test_only_the_llm_role_is_optional() -> None:
    assert [r.name for r in ROLES if r.optional] == ["llm"]
