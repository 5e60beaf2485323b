"""Loading a project file onto the board: all or nothing, idempotent by task id.

Tasks already on the board are left alone (loading twice adds nothing); a dependency must
be in the file or already on the board. A new task's `pending_deps` counts its
dependencies that are not done yet, and its skill signature joins `skill_sigs`, so the
assignment probes (store.READY_PROBE_SQL) find it at once; each new task without a pending
dependency is reported as offerable (`Txn.ready`), which wakes that many long-pollers.

Two steps, so a big file holds the database's write lock only for its inserts: `prepare`
does every per-task encoding and check from the file and the registered roles (no lock:
~80 % of a load's time), and `apply` runs inside the load's one transaction, reading which ids are on the
board already and writing the rest. Measured on 100,000 tasks here: the write lock was held
for the whole 7-9 s load before the split, for the inserts alone (~2 s) after it
(bench/README or docs/reliability.md).

Every new task is checked against the workers that could take it (checks.py): a payload
no such worker accepts refuses the whole file, naming the task and the key; an unknown
skill or a task any worker might take comes back as a warning. The workers are the roles
registered when `prepare` ran (a worker registering during the load is not seen: the
checks advise, the board stays consistent either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pm_agent_stub.board import checks, signature
from pm_agent_stub.board.store import Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.errors import BoardError
from pm_agent_stub.project_file import ProjectFileError, ProjectSpec, parse_project
from pm_protocol import results as r
from pm_protocol.limits import dumps
from pm_protocol.literals import PRIORITY_RANK


@dataclass(frozen=True)
class LoadOutcome:
    added: int
    skipped: int
    project: str | None
    warnings: tuple[tuple[str, str], ...] = ()  # (task id, warning) for the tasks added


@dataclass(frozen=True, slots=True)
class PreparedTask:
    """One task's row, encoded; only `pending_deps` and the load order wait for the board."""

    task_id: str
    dependencies: tuple[str, ...]
    sig_column: str
    skill_count: int
    head: tuple[Any, ...]  # the `tasks` columns before pending_deps (store.insert_tasks order)
    tail: tuple[Any, ...]  # estimated_hours, payload
    refusal: str | None  # why no possible worker accepts its payload (checks.py)
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PreparedLoad:
    project: str | None
    tasks: tuple[PreparedTask, ...]


def prepare(spec: ProjectSpec, pool: Sequence[checks.Taker]) -> PreparedLoad:
    """Encode and check every task of the file against `pool` (run it outside the transaction)."""
    tasks = []
    # The checks read only the required skills and the payload's keys, and a file's tasks
    # share a few such pairs: checked once each. (A skill no worker has costs ~0.11 ms a
    # task for its did-you-mean, 11 s over 100,000 tasks; a known one ~4 µs.)
    verdicts: dict[tuple[frozenset[str], frozenset[str]], tuple[str | None, tuple[str, ...]]] = {}
    for task in spec.tasks:
        shape = (frozenset(s.lower() for s in task.required_skills), frozenset(task.payload))
        verdict = verdicts.get(shape)
        if verdict is None:
            verdict = verdicts[shape] = (
                checks.payload_refusal(task.required_skills, task.payload, pool),
                tuple(checks.warnings(task.required_skills, task.payload, pool)),
            )
        sig = signature.of(task.required_skills)
        sig_column = signature.to_column(sig)
        tasks.append(
            PreparedTask(
                task_id=task.id,
                dependencies=tuple(task.dependencies),
                sig_column=sig_column,
                skill_count=len(sig),
                head=(
                    task.id,
                    spec.project,
                    task.name,
                    task.description,
                    task.instructions,
                    task.priority,
                    PRIORITY_RANK[task.priority],
                    dumps(task.required_skills),
                    len(sig),
                    sig_column,
                    dumps(task.labels),
                    dumps(task.dependencies),
                ),
                tail=(task.estimated_hours, dumps(task.payload)),
                refusal=verdict[0],
                warnings=verdict[1],
            )
        )
    return PreparedLoad(project=spec.project, tasks=tuple(tasks))


def apply(store: Store, txn: Txn, load: PreparedLoad, label: str) -> LoadOutcome:
    """Add the prepared tasks that are not on the board yet, inside the caller's transaction."""
    file_ids = {t.task_id for t in load.tasks}
    on_board = store.statuses(file_ids | {d for t in load.tasks for d in t.dependencies})
    for task in load.tasks:
        for dep in task.dependencies:
            if dep not in file_ids and dep not in on_board:
                raise ProjectFileError(
                    f"{label}: task '{task.task_id}' field 'dependencies': unknown dependency '{dep}' "
                    "(not in this file and not on the board)"
                )
    new = [t for t in load.tasks if t.task_id not in on_board]
    found: list[tuple[str, str]] = []
    for task in new:
        if task.refusal is not None:
            raise ProjectFileError(f"{label}: task '{task.task_id}' field 'payload': {task.refusal}")
        found.extend((task.task_id, w) for w in task.warnings)
    seq = store.max_created_seq()
    task_rows: list[tuple[Any, ...]] = []
    sig_rows: set[tuple[str, int]] = set()
    dep_rows: list[tuple[str, str]] = []
    for task in new:
        seq += 1
        pending = sum(1 for d in task.dependencies if on_board.get(d) != "done")
        task_rows.append((*task.head, pending, *task.tail, seq, txn.now, txn.now))
        sig_rows.add((task.sig_column, task.skill_count))
        dep_rows.extend((task.task_id, d) for d in task.dependencies)
        if pending == 0:
            txn.ready(task.sig_column, +1)
    store.insert_tasks(task_rows, sig_rows, dep_rows)
    skipped = len(load.tasks) - len(new)
    txn.event(
        "loaded",
        None,
        None,
        None,
        {"file": label, "project": load.project, "added": len(new), "skipped": skipped},
    )
    return LoadOutcome(added=len(new), skipped=skipped, project=load.project, warnings=tuple(found))


def result(outcome: LoadOutcome, source: str) -> r.LoadResult:
    """What the `load_project` tool answers (and the CLI prints) for a load."""
    warned = f"; {len(outcome.warnings)} warning(s)" if outcome.warnings else ""
    return r.LoadResult(
        success=True,
        message=f"{source}: loaded {outcome.added} new task(s), {outcome.skipped} already on the board{warned}",
        project=outcome.project,
        added=outcome.added,
        skipped=outcome.skipped,
        warnings=[r.LoadWarning(task_id=t, warning=w) for t, w in outcome.warnings],
    )


def parsed_project(text: str, source: str) -> ProjectSpec:
    """A project file's text, checked; a refusal is `invalid_argument` (what it says and where)."""
    try:
        return parse_project(text, source)
    except ProjectFileError as exc:
        raise BoardError("invalid_argument", str(exc)) from None
