"""The operator CLI: load (exit 2 on a bad file, board untouched), status, resolve, settings errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.testing import load_tasks, read_events, run_cli, task, tasks_yaml


def test_load_is_idempotent_and_status_json_shows_the_board(tmp_path: Path) -> None:
    db, project = tmp_path / "b.db", tmp_path / "p.yaml"
    project.write_text(tasks_yaml(task("a", "s"), task("b", "s", dependencies=["a"], priority="urgent")))
    first = run_cli("load", str(project), "--db", str(db), "--create")
    second = run_cli("load", str(project), "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert f"creating a new board file at {db}" in first.stderr
    assert "loaded 2 new task(s)" in first.stderr
    assert second.returncode == 0
    assert "loaded 0 new task(s), 2 already on the board" in second.stderr
    status = run_cli("status", "--db", str(db), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["project_status"]["total_tasks"] == 2
    assert report["project_status"]["todo"] == 2
    assert {t["task_id"]: t["pending_dependencies"] for t in report["tasks"]} == {"a": 0, "b": 1}
    human = run_cli("status", "--db", str(db))
    assert human.returncode == 0
    assert "2 tasks" in human.stdout
    assert "Workers" in human.stdout


def test_bad_project_file_exits_2_with_one_line_and_leaves_the_board_untouched(tmp_path: Path) -> None:
    db, bad = tmp_path / "b.db", tmp_path / "bad.yaml"
    load_tasks(db, task("existing", "s"))
    events_before = read_events(db)
    bad.write_text(tasks_yaml(task("fresh", "s"), task("broken", "s", dependencies=["nowhere"])))
    result = run_cli("load", str(bad), "--db", str(db))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{bad}: task 'broken' field 'dependencies': unknown dependency 'nowhere' (not in this file and not on the board)"
    )
    board = Board(connect(db))
    assert [t.task_id for t in board.list_tasks().tasks] == ["existing"]
    assert read_events(db) == events_before


def test_serve_refuses_a_bad_project_file_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - {id: a, name: A, priority: whenever}\n")
    result = run_cli("serve", "--db", str(tmp_path / "b.db"), "--project", str(bad), "--port", "0")
    assert result.returncode == 2
    assert f"{bad}: task 'a' field 'priority': unknown priority 'whenever'" in result.stderr


def test_resolve_puts_a_blocked_task_back(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    load_tasks(db, task("t", "s"))
    board = Board(connect(db))
    board.register_agent("w", "W", "r", ["s"])
    board.request_next_task("w")
    board.report_blocker("w", "t", "permission denied on /srv", "high")
    result = run_cli("resolve", "t", "--resolution", "chmod fixed", "--db", str(db))
    assert result.returncode == 0
    assert "Resolved 1 blocker(s)" in result.stderr
    assert board.get_task_context("t").task.status == "todo"
    missing = run_cli("resolve", "nope", "--resolution", "x", "--db", str(db))
    assert missing.returncode == 1
    assert "task 'nope' is not on the board" in missing.stderr
    assert "request_next_task" not in missing.stderr  # spoken to the operator, not to a worker


def test_bad_settings_exit_2_naming_the_variable(tmp_path: Path) -> None:
    for env, name in (
        ({"PM_LEASE_SECONDS": "soon"}, "PM_LEASE_SECONDS"),
        ({"PM_AGENT_PORT": "99999"}, "PM_AGENT_PORT"),
        ({"PM_DB_SYNCHRONOUS": "sometimes"}, "PM_DB_SYNCHRONOUS"),
        ({"PM_MAX_ATTEMPTS": "0"}, "PM_MAX_ATTEMPTS"),
    ):
        result = run_cli("status", "--db", str(tmp_path / "b.db"), env=env)
        assert result.returncode == 2, (env, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("invalid settings: " + name)


def test_db_and_url_answer_alike_through_one_tool_router(stub_factory: Any, tmp_path: Path) -> None:
    """`--db FILE` serves the file through the stub's own router, in memory: the same answers, refusals
    included, as the running stub gives over HTTP for the same board."""
    db = tmp_path / "shared.db"
    load_tasks(db, task("a", "s"), task("b", "s", dependencies=["a"]))
    stub = stub_factory(db)
    env = {"PM_AGENT_URL": stub.url}
    for command in (("status", "--json"), ("show", "b", "--json")):
        over_http = run_cli(*command, env=env)
        in_memory = run_cli(*command, "--db", str(db))
        assert over_http.returncode == in_memory.returncode == 0, (over_http.stderr, in_memory.stderr)
        here, there = json.loads(over_http.stdout), json.loads(in_memory.stdout)
        here.pop("source", None)
        there.pop("source", None)
        assert here == there, command
    too_long = "x" * 201
    refused = [run_cli("show", too_long, env=env), run_cli("show", too_long, "--db", str(db))]
    assert [r.returncode for r in refused] == [1, 1]
    assert refused[0].stderr == refused[1].stderr
    assert "not sent to the stub: task_id: String should have at most 200 characters" in refused[1].stderr
