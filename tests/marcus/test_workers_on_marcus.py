"""Real worker processes over HTTP against a real Marcus 0.3.8, unchanged worker code.

What a user relies on: our specialists do their tasks from a Marcus board (inputs from the
pm-payload block); a task without inputs, or with failing tests, ends blocked with Marcus's
suggestions; three workers drain a board completing each task exactly once; a SIGTERMed
worker keeps its task and the same id resumes it after a restart; PM_PROTOCOL=auto picks
the dialect for each server; a Marcus without PM_PROJECT_ID stops the worker with exit 2.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import load_tasks, start_stub, task, wait_until
from tests.helpers import REPO_ROOT
from tests.integration.workerproc import STEP_WORKER, WorkerProcess, start_worker
from tests.marcus.host import MarcusProcess

pytestmark = pytest.mark.marcus

DEMO = REPO_ROOT / "examples" / "demo-project"


def marcus_task(
    key: str, name: str, labels: list[str], payload: str | None, project: str, **fields: Any
) -> dict[str, Any]:
    description = f"{name}."
    if payload is not None:
        description += f"\n\n```yaml pm-payload\n{payload}\n```\n"
    return {
        "key": key,
        "name": name,
        "description": description,
        "priority": "medium",
        "estimated_hours": 0.1,
        "labels": labels,
        "project_id": project,
        **fields,
    }


def worker(
    module_or_script: str,
    marcus: MarcusProcess,
    log: Path,
    workspace: Path,
    agent_id: str,
    project: str | None,
    **env: str,
) -> WorkerProcess:
    args = ["-m", module_or_script] if not module_or_script.endswith(".py") else [module_or_script]
    extra = {"PM_PROJECT_ID": project} if project else {}
    return start_worker(
        args,
        log,
        PM_AGENT_URL=marcus.url,
        AGENT_ID=agent_id,
        WORKSPACE=str(workspace),
        PM_PROTOCOL=env.pop("PM_PROTOCOL", "marcus"),
        POLL_WAIT_SECONDS="25",
        HEARTBEAT_SECONDS="2",
        **extra,
        **env,
    )


def events(proc: WorkerProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in proc.events() if e.get("event") == name]


def stop_all(*procs: WorkerProcess) -> None:
    for proc in procs:
        if proc.alive():
            proc.terminate(timeout=60)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    shutil.copytree(DEMO, path / "demo-project")
    return path


def test_documentation_and_testing_tasks_from_a_marcus_board(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    env = 'env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}'
    ids = marcus.seed(
        [
            marcus_task(
                "api",
                "API reference for calc",
                ["api-docs"],
                "kind: api\npath: demo-project/calc\noutput: docs/api",
                "docs",
            ),
            marcus_task("nopayload", "Tutorial without inputs", ["tutorials"], None, "docs"),
            marcus_task(
                "unit",
                "Run the calc unit tests",
                ["unit-testing"],
                f"path: demo-project\ncommand: python -m pytest -q tests/unit\n{env}",
                "tests",
            ),
            marcus_task(
                "legacy",
                "Run the legacy expectations",
                ["pytest"],
                f"path: demo-project\ncommand: python -m pytest -q legacy_tests\n{env}",
                "tests",
            ),
        ]
    )
    docs = worker("documentation_worker", marcus, tmp_path / "docs.log", workspace, "docs-1", "docs")
    tests = worker("testing_worker", marcus, tmp_path / "tests.log", workspace, "tests-1", "tests")
    try:
        wait_until(
            lambda: (
                all(marcus.board()[i]["status"] in ("done", "blocked") for i in ids.values())
                and len(events(tests, "task_blocked")) + len(events(docs, "task_blocked")) == 2
                and len(events(tests, "task_completed")) + len(events(docs, "task_completed")) == 2
            ),
            240,
            message="all four tasks done or blocked, and the workers said so",
        )
        board = marcus.board()
        assert board[ids["api"]]["status"] == "done"
        assert (workspace / "docs" / "api" / "index.md").is_file()
        assert board[ids["unit"]]["status"] == "done"
        # no pm-payload block: a clear blocker saying how to add one
        assert board[ids["nopayload"]]["status"] == "blocked"
        assert any(
            "has no pm-payload block" in c and "docs/workers.md#documentation" in c
            for c in board[ids["nopayload"]]["comments"]
        )
        # failing tests: blocked naming the test, with Marcus's suggestions in the worker's log
        assert board[ids["legacy"]]["status"] == "blocked"
        assert any("test_legacy_rounds_ties_up" in c for c in board[ids["legacy"]]["comments"])
        [blocked] = [e for e in events(tests, "task_blocked") if e.get("task_id") == ids["legacy"]]
        assert blocked["suggestion"].startswith("Root cause: ")
        assert "Steps: 1) " in blocked["suggestion"]
        # the testing worker's report artifact is a file Marcus wrote into the shared workspace
        artifacts = list(
            (workspace / ".pm-state" / "marcus" / "artifacts" / ids["unit"]).glob("*-test_report.json")
        )
        assert len(artifacts) == 1
        assert [e["dialect"] for e in events(docs, "registered") + events(tests, "registered")] == [
            "marcus"
        ] * 2
    finally:
        stop_all(docs, tests)
    assert docs.proc.returncode == 0, docs.logs()[-3000:]
    assert tests.proc.returncode == 0, tests.logs()[-3000:]


def test_three_workers_drain_twenty_tasks_each_completed_once(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    ids = marcus.seed(
        [
            marcus_task(f"t{i}", f"Step task {i}", ["steps"], "steps: 1\nledger: ledger.txt", "steps")
            for i in range(20)
        ]
    )
    start = time.monotonic()
    procs = [
        worker(str(STEP_WORKER), marcus, tmp_path / f"w{n}.log", workspace, f"steps-{n}", "steps")
        for n in range(3)
    ]
    try:
        wait_until(
            lambda: sum(marcus.board()[i]["status"] == "done" for i in ids.values()) == 20,
            300,
            message="20 tasks done",
        )
        drained = time.monotonic() - start
        # each worker logs its completion once Marcus acknowledged it
        wait_until(
            lambda: sum(len(events(p, "task_completed")) for p in procs) >= 20,
            30,
            message="20 completions logged",
        )
        board = marcus.board()
        assert all(board[i]["status"] == "done" and board[i]["completed_at"] for i in ids.values())
        completions = Counter(e["task_id"] for p in procs for e in events(p, "task_completed"))
        assert sorted(completions) == sorted(ids.values())
        assert set(completions.values()) == {1}
        ledger = Counter(
            line.split(" step ")[0] for line in (workspace / "ledger.txt").read_text().splitlines()
        )
        assert ledger == Counter({i: 1 for i in ids.values()})  # each task's step ran once, nowhere twice
        assert sum(1 for p in procs if events(p, "task_completed")) >= 2  # the work was shared
        print(f"\nMarcus: 3 workers drained 20 tasks in {drained:.1f}s")
    finally:
        stop_all(*procs)
    for p in procs:
        assert p.proc.returncode == 0, p.logs()[-3000:]


def test_sigterm_keeps_the_task_and_the_same_id_resumes_it(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    [task_id] = marcus.seed(
        [
            marcus_task(
                "long", "Long task", ["steps"], "steps: 8\nstep_seconds: 0.5\nledger: ledger.txt", "steps"
            )
        ]
    ).values()
    first = worker(
        str(STEP_WORKER),
        marcus,
        tmp_path / "first.log",
        workspace,
        "steps-same",
        "steps",
        SHUTDOWN_GRACE_SECONDS="1",
    )
    try:
        wait_until(
            lambda: (
                (workspace / "ledger.txt").exists()
                and len((workspace / "ledger.txt").read_text().splitlines()) >= 2
            ),
            120,
            message="two steps done",
        )
        assert first.terminate(timeout=60) == 0, first.logs()[-3000:]
    finally:
        first.kill()
    done_steps = len((workspace / "ledger.txt").read_text().splitlines())
    assert done_steps < 8
    # Marcus still has it on this agent (no release): in progress, with the note saying why
    row = marcus.board()[task_id]
    assert row["status"] == "in_progress"
    assert row["assigned_to"] == "steps-same"
    state = workspace / ".pm-state" / "marcus"
    assert (state / "agents" / "steps-same.json").is_file()
    assert (state / "tasks" / f"{task_id}.json").is_file()
    assert [e["reason"] for e in events(first, "task_released")] == [
        f"stopping after step {done_steps}/8; resume from the checkpoint"
    ]

    again = worker(str(STEP_WORKER), marcus, tmp_path / "again.log", workspace, "steps-same", "steps")
    try:
        wait_until(
            lambda: marcus.board()[task_id]["status"] == "done" and events(again, "task_completed"),
            120,
            message="resumed task done",
        )
        [done] = events(again, "task_completed")
        assert done["message"] == f"8 steps done, resumed from step {done_steps}"
        lines = (workspace / "ledger.txt").read_text().splitlines()
        assert [line.split(" by ")[0] for line in lines] == [f"{task_id} step {i}" for i in range(8)]
        assert events(again, "marcus_resuming_after_restart")
        assert not (state / "agents" / "steps-same.json").exists()
        assert not (state / "tasks" / f"{task_id}.json").exists()
    finally:
        stop_all(again)


def test_auto_picks_the_dialect_for_both_servers(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    db = tmp_path / "board.db"
    load_tasks(db, task("s1", "steps", payload={"steps": 1}))
    stub = start_stub(db)
    [marcus_id] = marcus.seed([marcus_task("m1", "Marcus step", ["steps"], "steps: 1", "steps")]).values()
    on_stub = start_worker(
        [str(STEP_WORKER)],
        tmp_path / "stub.log",
        PM_AGENT_URL=stub.url,
        AGENT_ID="auto-stub",
        WORKSPACE=str(workspace),
        PM_PROTOCOL="auto",
        PM_PROJECT_ID="steps",
        MAX_TASKS="1",
    )
    on_marcus = worker(
        str(STEP_WORKER),
        marcus,
        tmp_path / "marcus.log",
        workspace,
        "auto-marcus",
        "steps",
        PM_PROTOCOL="auto",
        MAX_TASKS="1",
    )
    try:
        assert on_stub.proc.wait(timeout=120) == 0, on_stub.logs()[-3000:]
        assert on_marcus.proc.wait(timeout=120) == 0, on_marcus.logs()[-3000:]
        assert [e["dialect"] for e in events(on_stub, "dialect_chosen")] == ["stub"]
        assert [e["dialect"] for e in events(on_marcus, "dialect_chosen")] == ["marcus"]
        assert marcus.board()[marcus_id]["status"] == "done"
    finally:
        on_stub.kill()
        on_marcus.kill()
        stub.stop()


def test_without_project_id_the_worker_exits_2_naming_it(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    proc = worker(
        str(STEP_WORKER), marcus, tmp_path / "w.log", workspace, "no-project", None, PM_PROTOCOL="auto"
    )
    assert proc.proc.wait(timeout=60) == 2, proc.logs()[-3000:]
    errors = [e for e in proc.events() if e.get("level") == "error"]
    assert len(errors) == 1
    assert errors[0]["event"] == "settings_invalid"
    assert errors[0]["error"].startswith("invalid setting PM_PROJECT_ID: required by the Marcus server at ")


def test_host_header_override_reaches_a_marcus_that_refuses_other_hosts(
    marcus: MarcusProcess, workspace: Path, tmp_path: Path
) -> None:
    [task_id] = marcus.seed([marcus_task("h1", "Host task", ["steps"], "steps: 1", "steps")]).values()
    refused = worker(
        str(STEP_WORKER),
        marcus,
        tmp_path / "refused.log",
        workspace,
        "host-1",
        "steps",
        PM_AGENT_HOST_HEADER="marcus:4298",
        RECONNECT_GIVE_UP_SECONDS="3",
    )
    assert refused.proc.wait(timeout=60) == 1
    assert "421" in refused.logs()
    ok = worker(
        str(STEP_WORKER),
        marcus,
        tmp_path / "ok.log",
        workspace,
        "host-2",
        "steps",
        PM_AGENT_HOST_HEADER="localhost:4298",
        MAX_TASKS="1",
    )
    assert ok.proc.wait(timeout=120) == 0, ok.logs()[-3000:]
    assert marcus.board()[task_id]["status"] == "done"
