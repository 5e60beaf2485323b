"""`ctx.dependency_artifacts()` and `ctx.artifact_data()` against the real stub (in memory).

The stub sends an assignment's dependency artifacts a page at a time and big data as
metadata only (`data_included: false`); a worker reading through these two calls still gets
every artifact and every byte.
"""

from __future__ import annotations

import json
from typing import Any

from pm_protocol.limits import INLINE_DATA_BYTES, PAGE_LIMIT
from pm_worker import Assignment, TaskContext, Worker
from pm_worker.testing import StubKit

BIG = "x" * (4 * INLINE_DATA_BYTES)  # too big to travel inline


def expected_data(index: int) -> Any:
    return BIG if index % 6 == 0 else {"i": index}


class RelayWorker(Worker):
    """Producers log 60 artifacts each; the consumer reads them all back through pm_worker."""

    role, name, skills = "relay", "Relay Worker", ("produce", "consume")

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        if task.payload.get("produce"):
            for i in range(60):
                await ctx.artifact("blob", f"{task.task_id}/{i}", data=expected_data(i))
            return "produced 60 artifacts"
        found = await ctx.dependency_artifacts()
        wrong = []
        for artifact in found:
            if await ctx.artifact_data(artifact) != expected_data(int(artifact.description.split("/")[1])):
                wrong.append(artifact.description)
        return json.dumps(
            {
                "in_assignment": len(task.dependency_artifacts),
                "more": task.dependency_artifacts_next is not None,
                "found": [a.description for a in found],
                "not_inline": sum(not a.data_included for a in found),
                "wrong": wrong,
            }
        )


async def test_every_dependency_artifact_and_all_its_data_reach_the_worker(pm_stub: StubKit) -> None:
    tasks = [
        {"id": "p1", "name": "p1", "required_skills": ["produce"], "payload": {"produce": True}},
        {"id": "p2", "name": "p2", "required_skills": ["produce"], "payload": {"produce": True}},
        {"id": "c", "name": "c", "required_skills": ["consume"], "dependencies": ["p1", "p2"]},
    ]
    run = await pm_stub.run(RelayWorker, tasks=tasks)
    assert run.status("c") == "done"
    report = json.loads(run.tasks["c"].progress_log[-1].message)
    assert (report["in_assignment"], report["more"]) == (PAGE_LIMIT, True)
    assert report["found"] == [f"{p}/{i}" for p in ("p1", "p2") for i in range(60)]
    assert report["not_inline"] == 20
    assert report["wrong"] == []
    # the kit's view of a task holds every page of its lists
    assert len(run.tasks["c"].dependency_artifacts) == 120
    assert run.tasks["c"].next_cursor is None
