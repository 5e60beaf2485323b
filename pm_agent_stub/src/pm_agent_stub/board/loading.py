"""Loading a project file onto the board: all or nothing, idempotent by task id.

Tasks already on the board are left alone (loading twice adds nothing); a dependency must
be in the file or already on the board. A new task's `pending_deps` counts its
dependencies that are not done yet, and its skill signature joins `skill_sigs`, so the
assignment probes (store.READY_PROBE_SQL) find it at once.

Every new task is checked against the workers that could take it (checks.py): a payload
no such worker accepts refuses the whole file, naming the task and the key; an unknown
skill or a task any worker might take comes back as a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pm_agent_stub.board import checks
from pm_agent_stub.board.store import Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.project_file import ProjectFileError, ProjectSpec
from pm_protocol.limits import PRIORITY_RANK, dumps


@dataclass(frozen=True)
class LoadOutcome:
    added: int
    skipped: int
    project: str | None
    warnings: tuple[tuple[str, str], ...] = ()  # (task id, warning) for the tasks added


def load_project(store: Store, txn: Txn, spec: ProjectSpec, label: str) -> LoadOutcome:
    """Add the file's tasks that are not on the board yet, inside the caller's transaction."""
    file_ids = {t.id for t in spec.tasks}
    on_board = store.statuses(file_ids | {d for t in spec.tasks for d in t.dependencies})
    for task in spec.tasks:
        for dep in task.dependencies:
            if dep not in file_ids and dep not in on_board:
                raise ProjectFileError(
                    f"{label}: task '{task.id}' field 'dependencies': unknown dependency '{dep}' "
                    "(not in this file and not on the board)"
                )
    new = [t for t in spec.tasks if t.id not in on_board]
    pool = checks.takers(store.registered_roles())
    found: list[tuple[str, str]] = []
    for task in new:
        refusal = checks.payload_refusal(task.required_skills, task.payload, pool)
        if refusal is not None:
            raise ProjectFileError(f"{label}: task '{task.id}' field 'payload': {refusal}")
        found.extend((task.id, w) for w in checks.warnings(task.required_skills, task.payload, pool))
    seq = store.max_created_seq()
    task_rows: list[tuple[Any, ...]] = []
    sig_rows: set[tuple[str, int]] = set()
    dep_rows: list[tuple[str, str]] = []
    for task in new:
        seq += 1
        skills_lc = sorted({s.lower() for s in task.required_skills})
        pending = sum(1 for d in task.dependencies if on_board.get(d) != "done")
        task_rows.append(
            (
                task.id,
                spec.project,
                task.name,
                task.description,
                task.instructions,
                task.priority,
                PRIORITY_RANK[task.priority],
                dumps(task.required_skills),
                len(skills_lc),
                dumps(skills_lc),
                dumps(task.labels),
                dumps(task.dependencies),
                pending,
                task.estimated_hours,
                dumps(task.payload),
                seq,
                txn.now,
                txn.now,
            )
        )
        sig_rows.add((dumps(skills_lc), len(skills_lc)))
        dep_rows.extend((task.id, d) for d in task.dependencies)
    store.insert_tasks(task_rows, sig_rows, dep_rows)
    skipped = len(spec.tasks) - len(new)
    txn.event(
        "loaded",
        None,
        None,
        None,
        {"file": label, "project": spec.project, "added": len(new), "skipped": skipped},
    )
    if new:
        txn.signals.add("work")
    return LoadOutcome(added=len(new), skipped=skipped, project=spec.project, warnings=tuple(found))
