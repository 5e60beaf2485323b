"""The board's size bounds, against the real stub over real HTTP (issue 17, Medium 5).

Each test reproduces a finding of the issue: a task logging 256 KiB artifacts without end,
a dependent's assignment and a task's context carrying every one of them, lists of progress
and blockers that only grow, a flood of registrations and registrations nobody uses any
more. Sizes and counts are asserted, never times; tests/reliability/board_size.py prints the
figures of docs/reliability.md.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.schema import SCHEMA_VERSION
from pm_agent_stub.testing import StubProcess, load_tasks, read_events, run_cli, task, wait_until
from pm_protocol.conformance import problems
from pm_protocol.limits import INLINE_DATA_BYTES, MAX_JSON_BYTES, PAGE_BYTES, dumps
from pm_protocol.results import AgentList, ArtifactContent, TaskContextResult, TaskOffer
from tests.reliability.board_size import ARTIFACT_DATA, Rpc

# An answer is its lists (each at most PAGE_BYTES) plus the task's own fields; this leaves
# room for those (small here) and still fails at the old sizes (hundreds of MiB).
LIST_SLACK = 16 * 1024


def json_bytes(value: Any) -> int:
    return len(dumps(value).encode())


def start_work(rpc: Rpc, agent_id: str, skill: str, task_id: str) -> None:
    assert rpc.call("register_agent", {"agent_id": agent_id, "name": "N", "role": "r", "skills": [skill]})[
        "success"
    ]
    offer = rpc.call("request_next_task", {"agent_id": agent_id})
    assert offer["assignment"]["task_id"] == task_id, offer


def log(rpc: Rpc, agent_id: str, task_id: str, description: str, data: Any = None) -> dict[str, Any]:
    arguments = {
        "agent_id": agent_id,
        "task_id": task_id,
        "artifact_type": "blob",
        "description": description,
    }
    if data is not None:
        arguments["data"] = data
    return rpc.call("log_artifact", arguments)


def complete(rpc: Rpc, agent_id: str, task_id: str) -> None:
    done = {"agent_id": agent_id, "task_id": task_id, "status": "completed", "progress": 100, "message": "ok"}
    assert rpc.call("report_task_progress", done)["status"] == "task_completed"


def every_page(rpc: Rpc, tool: str, arguments: dict[str, Any], key: str) -> tuple[list[Any], int]:
    """All entries of list `key` across the pages of `tool`; (entries, pages)."""
    answer = rpc.call(tool, arguments)
    found, pages = list(answer[key]), 1
    while answer.get("next_cursor"):
        answer = rpc.call(tool, {**arguments, "cursor": answer["next_cursor"]})
        found += answer[key]
        pages += 1
    return found, pages


# ------------------------------------------------------------------ artifacts


def test_artifact_caps_refuse_past_the_bytes_and_the_count(stub: StubProcess, uniq: str) -> None:
    """The issue logged 400 x 256 KiB on one task (board file 105 MiB); the defaults keep 15 of them."""
    skill, big, many = f"caps-{uniq}", f"big-{uniq}", f"many-{uniq}"
    load_tasks(stub.db, task(big, skill), task(many, skill, priority="low"))
    rpc = Rpc(stub)
    start_work(rpc, f"w-{uniq}", skill, big)
    answers = [log(rpc, f"w-{uniq}", big, f"blob {i}", ARTIFACT_DATA) for i in range(20)]
    assert [a["success"] for a in answers] == [True] * 15 + [False] * 5
    refusal = answers[15]
    assert refusal["error"] == "invalid_argument"
    assert "PM_MAX_ARTIFACT_BYTES_PER_TASK=4,194,304; nothing was stored" in refusal["message"]
    assert "Store big data in the workspace" in refusal["message"]
    kept, _ = every_page(rpc, "get_task_context", {"task_id": big}, "artifacts")
    assert [a["description"] for a in kept] == [f"blob {i}" for i in range(15)]
    assert {a["size"] for a in kept} == {MAX_JSON_BYTES}
    complete(rpc, f"w-{uniq}", big)

    assert rpc.call("request_next_task", {"agent_id": f"w-{uniq}"})["assignment"]["task_id"] == many
    small = [log(rpc, f"w-{uniq}", many, f"note {i}", {"i": i}) for i in range(101)]
    assert [a["success"] for a in small] == [True] * 100 + [False]
    assert (
        "already has 100 artifacts, the most a task may have (PM_MAX_ARTIFACTS_PER_TASK=100)"
        in small[100]["message"]
    )
    kept, pages = every_page(rpc, "get_task_context", {"task_id": many}, "artifacts")
    assert (len(kept), pages) == (100, 1)
    rpc.close()


def test_dependents_get_artifact_metadata_in_bounded_pages_and_data_on_request(
    stub_factory: Any, tmp_path: Path
) -> None:
    """With caps raised as far as the issue went: the assignment was 200 MiB, now it is one bounded page."""
    stub = stub_factory(
        env={"PM_MAX_ARTIFACTS_PER_TASK": "400", "PM_MAX_ARTIFACT_BYTES_PER_TASK": str(200 * 1024 * 1024)}
    )
    load_tasks(stub.db, task("producer", "make"), task("consumer", "use", dependencies=["producer"]))
    rpc = Rpc(stub)
    start_work(rpc, "maker", "make", "producer")
    # every other artifact 256 KiB; the rest small enough to travel inline
    ids = [
        log(rpc, "maker", "producer", f"a{i}", ARTIFACT_DATA if i % 2 == 0 else {"i": i})["artifact_id"]
        for i in range(130)
    ]
    complete(rpc, "maker", "producer")

    start_work(rpc, "user", "use", "consumer")
    offer = rpc.call("request_next_task", {"agent_id": "user"})  # the same assignment, renewed
    assert problems(TaskOffer, offer) == []
    assert rpc.last_bytes < 2 * (PAGE_BYTES + LIST_SLACK) + 4096  # text and structured copy
    assignment = offer["assignment"]
    listed = assignment["dependency_artifacts"]
    assert len(listed) == 100
    assert json_bytes(listed) <= PAGE_BYTES
    for artifact in listed:
        if artifact["description"] in {f"a{i}" for i in range(0, 130, 2)}:
            assert (artifact["data"], artifact["data_included"], artifact["size"]) == (
                None,
                False,
                MAX_JSON_BYTES,
            )
        else:
            assert artifact["data_included"] is True
            assert artifact["data"] == {"i": int(artifact["description"][1:])}
            assert artifact["size"] == json_bytes(artifact["data"]) <= INLINE_DATA_BYTES

    rest = rpc.call(
        "get_task_context", {"task_id": "consumer", "cursor": assignment["dependency_artifacts_next"]}
    )
    assert problems(TaskContextResult, rest) == []
    assert (rest["progress_log"], rest["blockers"], rest["artifacts"]) == ([], [], [])
    assert "next_cursor" not in rest
    assert [a["artifact_id"] for a in listed + rest["dependency_artifacts"]] == ids

    whole = rpc.call("get_artifact", {"artifact_id": ids[0]})
    assert problems(ArtifactContent, whole) == []
    assert (whole["artifact"]["data"], whole["artifact"]["data_included"]) == (ARTIFACT_DATA, True)

    context = rpc.call("get_task_context", {"task_id": "producer"})
    assert rpc.last_bytes < 2 * (2 * PAGE_BYTES + LIST_SLACK) + 4096  # 201 MiB in the issue
    assert len(context["artifacts"]) == 100
    own, pages = every_page(rpc, "get_task_context", {"task_id": "producer"}, "artifacts")
    assert ([a["artifact_id"] for a in own], pages) == (ids, 2)
    rpc.close()


# ------------------------------------------------------------------ a task's lists


def test_task_context_pages_the_progress_log_and_blockers_back_from_the_newest(
    stub: StubProcess, uniq: str
) -> None:
    skill, mine, other = f"ctx-{uniq}", f"t-{uniq}", f"o-{uniq}"
    load_tasks(stub.db, task(mine, skill), task(other, f"nobody-{uniq}"))
    rpc = Rpc(stub)
    agent = f"w-{uniq}"
    start_work(rpc, agent, skill, mine)
    for i in range(25):
        progress = {
            "agent_id": agent,
            "task_id": mine,
            "status": "in_progress",
            "progress": i,
            "message": f"p{i}",
        }
        rpc.call("report_task_progress", progress)
    for i in range(7):  # seven blockers, each resolved but the last
        if i:
            rpc.call("resolve_blocker", {"task_id": mine, "resolution": f"fixed {i - 1}"})
            assert rpc.call("request_next_task", {"agent_id": agent})["has_task"]
        blocked = {"agent_id": agent, "task_id": mine, "blocker_description": f"b{i}", "severity": "low"}
        assert rpc.call("report_blocker", blocked)["success"]

    first = rpc.call("get_task_context", {"task_id": mine, "limit": 10})
    assert problems(TaskContextResult, first) == []
    assert [p["message"] for p in first["progress_log"]] == [f"p{i}" for i in range(15, 25)]
    assert [b["description"] for b in first["blockers"]] == ["b0", "b1", "b2", "b3", "b4", "b5", "b6"]
    assert first["blockers"][-1]["resolved"] is False  # the open blocker is on the first page
    second = rpc.call("get_task_context", {"task_id": mine, "limit": 10, "cursor": first["next_cursor"]})
    assert [p["message"] for p in second["progress_log"]] == [f"p{i}" for i in range(5, 15)]
    assert second["blockers"] == []  # it had no more
    third = rpc.call("get_task_context", {"task_id": mine, "limit": 10, "cursor": second["next_cursor"]})
    assert [p["message"] for p in third["progress_log"]] == [f"p{i}" for i in range(5)]
    assert "next_cursor" not in third
    blockers, pages = every_page(rpc, "get_task_context", {"task_id": mine, "limit": 3}, "blockers")
    assert ([b["description"] for b in blockers], pages) == ([f"b{i}" for i in (4, 5, 6, 1, 2, 3, 0)], 9)

    agents_cursor = rpc.call("list_registered_agents", {"limit": 1})["next_cursor"]
    for cursor, why in (
        (first["next_cursor"], f"was given out for another task, not '{other}'"),
        ("not-a-cursor", "is not a cursor get_task_context gave out"),
        (agents_cursor, "is not a cursor get_task_context gave out"),
    ):
        refused = rpc.call("get_task_context", {"task_id": other, "cursor": cursor})
        assert refused["error"] == "invalid_argument", refused
        assert f"argument 'cursor' {why}" in refused["message"]
        assert "pass the next_cursor of the previous page unchanged" in refused["message"]
    rpc.close()


# ------------------------------------------------------------------ the roster


def seed_agents(db: Path, count: int) -> None:
    """What a flood of `count` registrations leaves on the board (written in process: seconds, not minutes)."""
    board = Board(connect(db), max_agents=count + 1)
    try:
        with capture_logs():  # 22,000 "registered" lines would flood the test's output
            for i in range(count):
                board.register_agent(f"flood-{i:05d}", "F", "flood", ["nothing"])
    finally:
        board.close()


def test_22000_agents_are_listed_a_page_at_a_time(stub_factory: Any, tmp_path: Path) -> None:
    """The issue's flood: list_registered_agents was one 67 MiB answer and `status` took 12.7 s."""
    db = tmp_path / "board.db"
    seed_agents(db, 22_000)
    stub = stub_factory(db, env={"PM_MAX_AGENTS": "30000"})
    rpc = Rpc(stub)
    first = rpc.call("list_registered_agents", {})
    assert problems(AgentList, first) == []
    assert (first["agent_count"], len(first["agents"])) == (22_000, 100)
    assert rpc.last_bytes < 2 * PAGE_BYTES
    agents, pages = every_page(rpc, "list_registered_agents", {"limit": 200}, "agents")
    assert pages == 110
    assert [a["agent_id"] for a in agents] == [f"flood-{i:05d}" for i in range(22_000)]
    workers = rpc.call("get_project_status", {})["workers"]
    assert workers == {"total": 22_000, "working": 0, "idle": 22_000, "offline": 0}
    rpc.close()

    shown = run_cli("status", "--db", str(db), env={"COLUMNS": "120"}, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert sum("flood-" in line for line in shown.stdout.splitlines()) == 200
    assert "first 200 of 22000 registered, shown working, then idle, then offline" in " ".join(
        shown.stdout.split()
    )


def test_a_full_roster_refuses_new_ids_and_never_displaces_a_live_worker(stub_factory: Any) -> None:
    stub = stub_factory(env={"PM_MAX_AGENTS": "20"})
    load_tasks(stub.db, task("work", "real"))
    rpc = Rpc(stub)
    start_work(rpc, "live-worker", "real", "work")
    for i in range(19):
        assert rpc.call("register_agent", {"agent_id": f"flood-{i}", "name": "F", "role": "f", "skills": []})[
            "success"
        ]
    refused = rpc.call("register_agent", {"agent_id": "flood-19", "name": "F", "role": "f", "skills": []})
    assert refused["error"] == "invalid_argument"
    for words in ("already has 20 registered agents (PM_MAX_AGENTS=20)", "'flood-19' was not registered",
                  "Re-registering a known agent_id always works", "set PM_AGENT_TOKEN"):  # fmt: skip
        assert words in refused["message"]
    again = rpc.call("register_agent", {"agent_id": "flood-3", "name": "F2", "role": "f", "skills": []})
    assert again["message"].startswith("Re-registered")
    assert rpc.call("list_registered_agents", {})["agent_count"] == 20
    assert rpc.call("get_agent_status", {"agent_id": "live-worker"})["agent_info"]["current_task"] == "work"
    rpc.close()


def test_a_full_roster_makes_room_from_offline_agents_only(stub_factory: Any) -> None:
    stub = stub_factory(env={"PM_MAX_AGENTS": "5", "PM_AGENT_OFFLINE_SECONDS": "1"})
    load_tasks(stub.db, task("work", "real"))
    rpc = Rpc(stub)
    start_work(rpc, "live-worker", "real", "work")  # holds a task; it never heartbeats in this test
    for i in range(4):
        rpc.call("register_agent", {"agent_id": f"flood-{i}", "name": "F", "role": "f", "skills": []})

    def newcomer_registered() -> bool:
        return bool(
            rpc.call("register_agent", {"agent_id": "newcomer", "name": "N", "role": "r", "skills": []})[
                "success"
            ]
        )

    wait_until(newcomer_registered, timeout=30, interval=0.2, message="room made for the newcomer")
    listed = rpc.call("list_registered_agents", {})
    ids = {a["agent_id"] for a in listed["agents"]}
    assert listed["agent_count"] == 5
    assert {"live-worker", "newcomer"} <= ids
    [forgotten] = read_events(stub.db, "forgotten")
    assert forgotten["agent_id"] == "flood-0"  # the least recently seen
    assert forgotten["detail"]["why"] == "room for 'newcomer' (PM_MAX_AGENTS)"
    rpc.close()


def test_agents_not_seen_for_a_long_time_are_forgotten_but_never_a_holder(stub_factory: Any) -> None:
    stub = stub_factory(env={"PM_AGENT_FORGET_SECONDS": "1", "PM_LEASE_SECONDS": "3600"})
    load_tasks(stub.db, task("work", "real"))
    rpc = Rpc(stub)
    start_work(rpc, "holder", "real", "work")
    rpc.call("register_agent", {"agent_id": "gone", "name": "G", "role": "r", "skills": []})
    wait_until(
        lambda: not rpc.call("get_agent_status", {"agent_id": "gone"})["found"],
        timeout=30,
        interval=0.2,
        message="'gone' forgotten",
    )
    holder = rpc.call("get_agent_status", {"agent_id": "holder"})
    assert holder["agent_info"]["current_task"] == "work"  # not seen for as long, but it holds a task
    [event] = read_events(stub.db, "forgotten")
    assert (event["agent_id"], event["detail"]["why"]) == ("gone", "not seen for 1 s")
    assert rpc.call("heartbeat", {"agent_id": "gone"})["error"] == "agent_not_registered"
    assert rpc.call("register_agent", {"agent_id": "gone", "name": "G", "role": "r", "skills": []})["success"]
    complete(rpc, "holder", "work")
    rpc.close()


# ------------------------------------------------------------------ an older board file


def test_a_version_2_board_file_is_upgraded_in_place(stub_factory: Any, tmp_path: Path) -> None:
    """A board written before artifact data moved to its own table keeps every artifact."""
    db = tmp_path / "v2.db"
    conn = sqlite3.connect(str(db))
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        conn.execute(
            "CREATE TABLE artifacts (artifact_id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, "
            "agent_id TEXT NOT NULL, artifact_type TEXT NOT NULL, description TEXT NOT NULL, location TEXT, "
            "data TEXT, created_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO artifacts VALUES (1, 't', 'a', 'image', 'd', 'reg/x:1', '{\"k\":\"é\"}', 0)"
        )
        conn.execute("INSERT INTO artifacts VALUES (2, 't', 'a', 'note', 'no data', NULL, NULL, 0)")
    conn.close()

    stub = stub_factory(db)
    rpc = Rpc(stub)
    one = rpc.call("get_artifact", {"artifact_id": 1})["artifact"]
    assert (one["data"], one["size"], one["location"]) == ({"k": "é"}, len('{"k":"é"}'.encode()), "reg/x:1")
    two = rpc.call("get_artifact", {"artifact_id": 2})["artifact"]
    assert (two["data"], two["size"]) == (None, 0)
    rpc.close()
    check = sqlite3.connect(str(db))
    try:
        assert check.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
            SCHEMA_VERSION
        )
        assert "data" not in {row[1] for row in check.execute("PRAGMA table_info(artifacts)")}
    finally:
        check.close()


@pytest.mark.parametrize("limit", [0, 201, "5"])
def test_page_limits_out_of_range_are_refused(stub: StubProcess, limit: Any) -> None:
    rpc = Rpc(stub)
    refused = rpc.call("list_registered_agents", {"limit": limit})
    assert refused["error"] == "invalid_argument"
    assert "limit (optional): a whole number from 1 to 200" in refused["message"]
    rpc.close()
