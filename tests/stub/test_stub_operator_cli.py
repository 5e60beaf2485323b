"""The operator CLI against the running stub over real HTTP (issue 12 items 4, 6, 7, 8).

`python -m pm_agent_stub load|add-task|status|show|rerun|resolve` with `PM_AGENT_URL` (or
`--url`) and the stub's token; files are read where the CLI runs and sent to the stub. A
`--db` that does not exist is never created by status/show/rerun/resolve.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp

from pm_agent_stub.testing import StubProcess, call_tool, free_port, load_tasks, run_cli, stub_env, tasks_yaml


def cli(stub: StubProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"PM_AGENT_URL": stub.url, **env})


def work_on(stub: StubProcess, agent: str, skill: str, task_id: str, *, blocker: str | None = None) -> None:
    """An agent takes `task_id`, reports progress and an artifact, then completes or blocks it."""

    async def run() -> None:
        async with mcp.Client(stub.url) as client:
            await call_tool(
                client, "register_agent", {"agent_id": agent, "name": agent, "role": "r", "skills": [skill]}
            )
            got = await call_tool(client, "request_next_task", {"agent_id": agent})
            assert got["assignment"]["task_id"] == task_id, got
            base = {"agent_id": agent, "task_id": task_id}
            await call_tool(
                client,
                "report_task_progress",
                {**base, "status": "in_progress", "progress": 50, "message": "ran 4 tests"},
            )
            await call_tool(
                client,
                "log_artifact",
                {
                    **base,
                    "artifact_type": "test_report",
                    "description": "JUnit report",
                    "location": "app/reports/x.xml",
                },
            )
            if blocker is None:
                await call_tool(
                    client,
                    "report_task_progress",
                    {**base, "status": "completed", "progress": 100, "message": "all passed"},
                )
            else:
                await call_tool(
                    client, "report_blocker", {**base, "blocker_description": blocker, "severity": "high"}
                )
            await call_tool(client, "deregister_agent", {"agent_id": agent})

    anyio.run(run)


def reruns_counted(stub: StubProcess) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{stub.base_url}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("pm_agent_task_reruns_total ")
    )


def test_load_sends_a_host_file_and_status_shows_the_running_board(
    stub: StubProcess, tmp_path: Path, uniq: str
) -> None:
    skill = f"cli-{uniq}"
    fleet = tmp_path / "my project" / "fleet.yaml"  # a path only this side of the wire knows
    fleet.parent.mkdir()
    long_id = f"a-rather-long-task-id-that-must-stay-whole-{uniq}"
    fleet.write_text(
        tasks_yaml(
            {"id": long_id, "name": "Long", "required_skills": [skill]},
            {"id": f"typo-{uniq}", "name": "Typo", "required_skills": ["tests"]},
        )
    )
    loaded = cli(stub, "load", str(fleet))
    assert loaded.returncode == 0, loaded.stderr
    assert f"{fleet}: loaded 2 new task(s), 0 already on the board; 2 warning(s)" in loaded.stderr
    assert (
        f"warning: task 'typo-{uniq}': no worker has skill 'tests' (did you mean 'testing'?)" in loaded.stderr
    )
    again = cli(stub, "load", str(fleet))
    assert "loaded 0 new task(s), 2 already on the board" in again.stderr

    report = json.loads(cli(stub, "status", "--json").stdout)
    assert report["source"] == stub.url
    tasks = {t["task_id"]: t for t in report["tasks"]}
    assert tasks[long_id]["status"] == "todo"
    assert tasks[f"typo-{uniq}"]["warnings"][0].startswith("no worker has skill 'tests'")
    narrow = cli(stub, "status", COLUMNS="80")
    assert narrow.returncode == 0, narrow.stderr
    assert any(long_id in line for line in narrow.stdout.splitlines()), narrow.stdout


def test_a_refused_file_exits_2_naming_the_task_and_key(stub: StubProcess, tmp_path: Path, uniq: str) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text(
        tasks_yaml(
            {
                "id": f"t-{uniq}",
                "name": "T",
                "required_skills": ["testing"],
                "payload": {"path": "app", "comand": "pytest"},
            }
        )
    )
    result = cli(stub, "load", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{bad}: task 't-{uniq}' field 'payload': the testing worker does not accept 'comand' "
        "(did you mean 'command'?) (it accepts: command, env, environment, install, path, python, report, timeout_seconds)"
    )


def test_a_file_too_big_for_one_request_is_refused_before_sending(stub: StubProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("tasks:\n" + "".join(f"  - {{id: t{i}, name: '{'x' * 80}'}}\n" for i in range(9000)))
    result = cli(stub, "load", str(big))
    assert result.returncode == 2
    assert "is more than the 768 KiB one load may send; split it into several files" in result.stderr
    offline = run_cli(
        "load", str(big), "--db", str(tmp_path / "b.db"), "--create"
    )  # no request: no such limit
    assert offline.returncode == 0, offline.stderr
    assert "loaded 9000 new task(s)" in offline.stderr


def test_add_task_show_rerun_and_resolve(stub: StubProcess, uniq: str) -> None:
    skill = f"flow-{uniq}"
    tests, build = f"tests-{uniq}", f"build-{uniq}"
    added = cli(
        stub,
        "add-task",
        "--id",
        tests,
        "--name",
        "Run the tests",
        "--skills",
        skill,
        "--priority",
        "high",
        "--payload",
        '{"path": "app"}',
    )
    assert added.returncode == 0, added.stderr
    assert (
        cli(
            stub, "add-task", "--id", build, "--name", "Build", "--skills", skill, "--depends-on", tests
        ).returncode
        == 0
    )
    twice = cli(stub, "add-task", "--id", tests, "--name", "Again")
    assert twice.returncode == 1
    assert (
        f"task '{tests}' is already on the board; nothing added (`rerun {tests}` runs it again)"
        in twice.stderr
    )
    not_json = cli(stub, "add-task", "--id", f"x-{uniq}", "--name", "X", "--payload", "{path: app}")
    assert not_json.returncode == 2
    assert "--payload is not JSON" in not_json.stderr

    failing = "1 of 4 tests failed in app: tests/test_shop.py::test_discount — assert 80 == 90"
    work_on(stub, f"w-{uniq}", skill, tests, blocker=failing)
    shown = cli(stub, "show", tests, COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"{tests}  blocked  Run the tests" in out
    assert "tests/test_shop.py::test_discount" in out
    assert "suggestion: Tests are failing" in out
    assert f"next: fix the cause, then `rerun {tests}`" in out
    assert any("test_report" in line and "app/reports/x.xml" in line for line in out.splitlines()), out
    assert "ran 4 tests" in out  # the progress log
    as_json = json.loads(cli(stub, "show", tests, "--json").stdout)
    assert as_json["task"]["payload"] == {"path": "app"}

    reruns_before = reruns_counted(stub)
    rerun = cli(stub, "rerun", tests, "--reason", "fixed the discount")
    assert rerun.returncode == 0, rerun.stderr
    assert f"Task '{tests}' is back in the queue (run 2)" in rerun.stderr
    assert reruns_counted(stub) >= reruns_before + 1  # /metrics: pm_agent_task_reruns_total
    work_on(stub, f"w-{uniq}", skill, tests)
    again = cli(stub, "rerun", build)
    assert again.returncode == 1  # it is already waiting in the queue: nothing to rerun
    assert "already in the queue" in again.stderr
    after = json.loads(cli(stub, "show", tests, "--json").stdout)
    assert after["task"]["status"] == "done"
    assert after["task"]["run"] == 2
    assert after["blockers"][0]["resolution"] == "rerun: fixed the discount"

    blocked = f"blocked-{uniq}"
    assert cli(stub, "add-task", "--id", blocked, "--name", "B", "--skills", skill).returncode == 0
    work_on(stub, f"w-{uniq}", skill, build)  # build was ready once tests was done again
    work_on(stub, f"w-{uniq}", skill, blocked, blocker="permission denied on /srv")
    resolved = cli(stub, "resolve", blocked, "--resolution", "chmod fixed")
    assert resolved.returncode == 0, resolved.stderr
    assert "Resolved 1 blocker(s)" in resolved.stderr


def test_unknown_tasks_are_told_in_the_clis_words(stub: StubProcess, uniq: str) -> None:
    for args in (
        ("show", f"nope-{uniq}"),
        ("rerun", f"nope-{uniq}"),
        ("resolve", f"nope-{uniq}", "--resolution", "x"),
    ):
        result = cli(stub, *args)
        assert result.returncode == 1, args
        assert f"task 'nope-{uniq}' is not on the board" in result.stderr, args
        assert "request_next_task" not in result.stderr, args


def test_without_a_stub_nothing_is_created_and_the_message_says_where_it_looked(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    for args in (("status",), ("resolve", "t", "--resolution", "x"), ("show", "t")):
        result = subprocess.run(
            [sys.executable, "-m", "pm_agent_stub", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=stub_env({"PM_AGENT_URL": url}),
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, (args, result.stderr)
        assert f"no stub answers at {url}" in result.stderr
        assert "--url or PM_AGENT_URL" in result.stderr
    for args in (
        ("status", "--db", "board.db"),
        ("resolve", "t", "--resolution", "x", "--db", "board.db"),
        ("load", "fleet.yaml", "--db", "board.db"),
    ):
        (tmp_path / "fleet.yaml").write_text(tasks_yaml({"id": "t", "name": "T"}))
        result = subprocess.run(
            [sys.executable, "-m", "pm_agent_stub", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=stub_env(),
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, (args, result.stderr)
        assert "there is no board at board.db" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml"]  # no board file was made


def test_the_cli_sends_the_token_from_a_token_file(stub_factory: Any, tmp_path: Path) -> None:
    guarded = stub_factory(env={"PM_AGENT_TOKEN": "op-s3cret"})
    token_file = tmp_path / "token"
    token_file.write_text("op-s3cret\n")
    ok = run_cli(
        "status", "--json", env={"PM_AGENT_URL": guarded.url, "PM_AGENT_TOKEN_FILE": str(token_file)}
    )
    assert ok.returncode == 0, ok.stderr
    refused = run_cli("status", env={"PM_AGENT_URL": guarded.url})
    assert refused.returncode == 1
    assert "refused the token: set PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE)" in refused.stderr


def test_status_watch_follows_the_running_stub_over_http(stub_factory: Any, tmp_path: Path) -> None:
    """`status --watch` without --db: the dashboard's board from the stub's port, with its token."""
    from tests.dashboard.test_status_watch import Terminal

    guarded = stub_factory(env={"PM_AGENT_TOKEN": "watch-s3cret"})
    load_tasks(guarded.db, {"id": "watched-task", "name": "W", "required_skills": ["x"]})
    term = Terminal(
        [
            "env",
            "PM_AGENT_TOKEN=watch-s3cret",
            sys.executable,
            "-m",
            "pm_agent_stub",
            "status",
            "--watch",
            "--interval",
            "0.5",
            "--url",
            guarded.url,
        ]
    )
    try:
        term.wait_for("watched-task")
        load_tasks(guarded.db, {"id": "second-watched", "name": "W2", "required_skills": ["x"]})
        term.wait_for("second-watched")
        term.proc.send_signal(signal.SIGINT)
        assert term.proc.wait(timeout=30) == 0
    finally:
        term.close()
