"""The chaos run's audit: from the stub's own tables (opened read-only), that nothing was lost,
done twice, done out of order, accepted from a non-holder or resumed from the wrong step, and
that every SIGKILLed worker's task came back within lease + sweep time."""

from __future__ import annotations

import json
import signal
from collections import defaultdict
from typing import Any

from tests.chaos.chaos import DONE_MESSAGE, STEP_MESSAGE, ChaosRun
from tests.reliability.boardcheck import invariant_problems, rows


def _reoffer_deadline(due: float, downtimes: list[tuple[float, float]], slack: float) -> float:
    """When a lease due at `due` must be back in the queue: due + slack, pushed past stub downtime."""
    effective = due
    for down, up in sorted(downtimes):
        if down <= effective + slack and up > effective:
            effective = up
    return effective + slack


def _orphans(run: ChaosRun, events: list[dict[str, Any]]) -> list[str]:
    """Assignments made when no process with that agent id was running (a long-poll outliving its worker)."""
    lives: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for w in run.workers:
        lives[w.agent_id].append((w.started_at, w.ended_at or run.finished_at, w.ended_by))
    out = []
    for e in events:
        if e["kind"] != "assigned":
            continue
        spans = lives.get(e["agent_id"], [])
        if not any(start <= e["at"] <= end for start, end, _ in spans):
            before = [s for s in spans if s[1] < e["at"]]
            how = max(before)[2] if before else "?"
            out.append(
                f"{e['task_id']}->{e['agent_id']} ({how}, {e['at'] - max(before)[1]:.2f}s after)"
                if before
                else f"{e['task_id']}->{e['agent_id']}"
            )
    return out


def audit(run: ChaosRun) -> dict[str, Any]:
    """Check the run against the stub's records; return the figures. Raises with every problem found."""
    cfg, db = run.cfg, run.db
    problems: list[str] = []
    tasks = {t["task_id"]: t for t in rows(db, "SELECT * FROM tasks")}
    events = rows(db, "SELECT * FROM events WHERE task_id IS NOT NULL ORDER BY id")
    progress = rows(db, "SELECT * FROM progress_log ORDER BY id")
    deps = {t["id"]: t["dependencies"] for t in run.project}
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_task[e["task_id"]].append(e)
    log_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in progress:
        log_by_task[p["task_id"]].append(p)

    # Every task done, and completed exactly once, by a holder, after its dependencies.
    if len(tasks) != cfg.tasks:
        problems.append(f"{len(tasks)} tasks on the board, expected {cfg.tasks}")
    not_done = sorted(t for t, row in tasks.items() if row["status"] != "done")
    if not_done:
        problems.append(f"{len(not_done)} tasks not done: {not_done[:10]}")
    completed_at: dict[str, int] = {}
    kinds: dict[str, int] = defaultdict(int)
    for task_id, evs in by_task.items():
        holder: str | None = None
        lease: str | None = None
        completions = 0
        for e in evs:
            kind, agent = e["kind"], e["agent_id"]
            detail = json.loads(e["detail"] or "{}")
            kinds[kind] += 1
            if kind == "assigned":
                if holder is not None:
                    problems.append(
                        f"{task_id}: assigned to {agent} while {holder} held it (event {e['id']})"
                    )
                missing = [d for d in deps.get(task_id, []) if completed_at.get(d, 10**18) > e["id"]]
                if missing:
                    problems.append(
                        f"{task_id}: assigned (event {e['id']}) before dependencies {missing} completed"
                    )
                holder, lease = agent, detail.get("lease_id")
            elif kind == "renewed":
                if agent != holder or detail.get("lease_id") != lease:
                    problems.append(
                        f"{task_id}: lease renewed for {agent} but {holder} holds it (event {e['id']})"
                    )
            elif kind in ("expired", "released"):
                if agent != holder:
                    problems.append(f"{task_id}: {kind} for {agent} but {holder} held it (event {e['id']})")
                holder = lease = None
            elif kind == "completed":
                completions += 1
                if agent != holder or detail.get("lease_id") != lease:
                    problems.append(
                        f"{task_id}: completion accepted from {agent} (lease {detail.get('lease_id')}) "
                        f"while the holder was {holder} (lease {lease}) (event {e['id']})"
                    )
                completed_at.setdefault(task_id, e["id"])
                if tasks.get(task_id, {}).get("completed_by") != agent:
                    problems.append(f"{task_id}: completed event by {agent}, completed_by says otherwise")
                holder = lease = None
            elif kind == "blocked":
                problems.append(f"{task_id}: blocked (event {e['id']}): the step worker never blocks")
                holder = lease = None
        if completions != 1:
            problems.append(f"{task_id}: completion accepted {completions} times")

    # Resume: the run that completed started from the checkpoint stored when it was handed the task.
    resumed = 0
    for task_id, task in tasks.items():
        if task["status"] != "done":
            continue
        log = log_by_task[task_id]
        done_rows = [p for p in log if p["status"] == "completed"]
        match = DONE_MESSAGE.match(done_rows[-1]["message"]) if done_rows else None
        if not match:
            problems.append(f"{task_id}: no completion message of the step worker in the progress log")
            continue
        steps, start = int(match.group(1)), int(match.group(2))
        completer = done_rows[-1]["agent_id"]
        handed = [
            e
            for e in by_task[task_id]
            if e["kind"] in ("assigned", "renewed")
            and e["agent_id"] == completer
            and e["at"] <= done_rows[-1]["at"]
        ]
        if not handed:
            problems.append(f"{task_id}: completed by {completer}, which was never handed it")
            continue
        handed_at = handed[-1]["at"]
        stored = [p for p in log if p["status"] == "in_progress" and p["at"] <= handed_at]
        expected = 0
        if stored:
            step_match = STEP_MESSAGE.match(stored[-1]["message"])
            expected = int(step_match.group(1)) if step_match else -1
        if start != expected:
            problems.append(
                f"{task_id}: the completing run resumed from step {start}, but the checkpoint stored when "
                f"{completer} was handed the task (event at {handed_at:.3f}) said step {expected}"
            )
        after = [
            int(m.group(1))
            for p in log
            if p["status"] == "in_progress"
            and p["at"] > handed_at
            and (m := STEP_MESSAGE.match(p["message"]))
        ]
        if after != list(range(start + 1, steps + 1)):
            problems.append(f"{task_id}: after resuming from {start} the stored checkpoints were {after}")
        if start > 0:
            resumed += 1

    # Every SIGKILLed holder's task came back within lease + sweep (+ stub downtime).
    recoveries: list[float] = []
    reoffer_times: list[float] = []
    lateness: list[float] = []  # re-offer after the lease was due (or the stub was back)
    reoffers = 0
    for k in run.kills:
        if k.task_id is None or k.lease_expires_at is None:
            continue
        if k.lease_expires_at > k.killed_at + cfg.lease_seconds + 0.5:
            problems.append(f"{k.task_id}: lease of killed {k.agent_id} ran past kill + lease")
        later = [e for e in by_task[k.task_id] if e["at"] >= k.killed_at]
        back = next((e for e in later if e["kind"] in ("expired", "renewed", "released")), None)
        deadline = _reoffer_deadline(k.lease_expires_at, run.downtimes, cfg.sweep_slack)
        if back is None:
            problems.append(f"{k.task_id}: held by SIGKILLed {k.agent_id}, never re-offered")
            continue
        reoffers += 1
        if back["at"] > deadline:
            problems.append(
                f"{k.task_id}: held by SIGKILLed {k.agent_id}; re-offered {back['at'] - k.killed_at:.2f}s after "
                f"the kill, {back['at'] - deadline:.2f}s past the deadline (lease due "
                f"{k.lease_expires_at - k.killed_at:.2f}s after the kill)"
            )
        reoffer_times.append(back["at"] - k.killed_at)
        lateness.append(back["at"] - (deadline - cfg.sweep_slack))
        again = next((e for e in later if e["kind"] in ("assigned", "renewed")), None)
        if again is not None:
            recoveries.append(again["at"] - k.killed_at)

    # A SIGTERMed worker exits 0 and gives back (or finishes) what it held.
    for t in run.terms:
        # Before registering (still importing) a worker has no handler yet and nothing to give back.
        early = t.exit_code == -signal.SIGTERM and not t.registered
        if t.exit_code not in (0, None) and not early:
            problems.append(f"{t.agent_id}: exited {t.exit_code} after SIGTERM")
        if t.held_after_exit is not None and t.registered:
            problems.append(f"{t.agent_id}: still held {t.held_after_exit} after a graceful exit")
    problems.extend(run.crashes)
    problems.extend(f"final board: {p}" for p in invariant_problems(db))

    figures = {
        "tasks": cfg.tasks,
        "workers": cfg.workers,
        "seconds": round(run.finished_at - run.started_at, 1),
        "kills": len(run.kills),
        "kills_of_holders": sum(1 for k in run.kills if k.task_id),
        "sigterms": len(run.terms),
        "stub_restarts": len(run.downtimes),
        "max_stub_downtime": round(max((u - d for d, u in run.downtimes), default=0.0), 2),
        "reoffers_after_kill": reoffers,
        "expired": kinds["expired"],
        "released": kinds["released"],
        "fenced_stale_reports": int(
            rows(db, "SELECT count(*) AS n FROM events WHERE kind = 'fenced'")[0]["n"]
        ),
        "resumed_from_checkpoint": resumed,
        "max_reoffer_seconds": round(max(reoffer_times, default=0.0), 2),
        "max_reoffer_after_due_seconds": round(max(lateness, default=0.0), 2),
        "max_recovery_seconds": round(max(recoveries, default=0.0), 2),
        "assignments": kinds["assigned"],
        "assignments_to_dead_workers": len(_orphans(run, events)),
    }
    if problems:
        raise AssertionError(
            f"{len(problems)} problem(s) in the chaos run {figures}:\n" + "\n".join(problems[:60])
        )
    return figures
