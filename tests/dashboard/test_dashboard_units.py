"""The dashboard's and the metrics' parts on a real board file, without a server: the auth
rules, the snapshot, the counters and gauges, the live pusher's coalescing, the terminal view."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from starlette.requests import Request

from pm_agent_stub.board import Board
from pm_agent_stub.dashboard.auth import SESSION_SECONDS, OperatorAuth, host_allowed
from pm_agent_stub.dashboard.live import LiveBoard
from pm_agent_stub.dashboard.login_limit import LoginLimit, address_key
from pm_agent_stub.dashboard.snapshot import take_snapshot
from pm_agent_stub.dashboard.terminal import render
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.metrics import BoardMetrics
from pm_agent_stub.project_file import check_project
from pm_agent_stub.settings import DEFAULT_ALLOWED_HOSTS
from pm_agent_stub.testing import load_tasks


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def request(headers: dict[str, str], cookies: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""})


# ---------------------------------------------------------------------------- auth


def test_a_session_lives_on_the_server_until_logout_or_expiry() -> None:
    clock = Clock()
    auth = OperatorAuth("s3cret-token", list(DEFAULT_ALLOWED_HOSTS), clock=clock)
    session = auth.new_session()
    assert "s3cret-token" not in session
    assert len(session) >= 43  # 256 random bits
    assert auth.session_valid(session)
    assert auth.session(session) not in (None, session)  # a key to tell sessions apart, not the cookie
    assert not OperatorAuth("s3cret-token", [], clock=clock).session_valid(session)  # another process
    assert not auth.session_valid(session[:-1])
    assert not auth.session_valid("")
    other = auth.new_session()
    assert auth.end_session(session) is not None
    assert not auth.session_valid(session)  # a copy of the cookie is no good after logout
    assert auth.end_session(session) is None
    assert auth.session_valid(other)
    clock.now += SESSION_SECONDS + 1
    assert not auth.session_valid(other)


def test_credentials_are_a_bearer_header_or_a_valid_cookie_and_nothing_in_the_url() -> None:
    auth = OperatorAuth("tok", list(DEFAULT_ALLOWED_HOSTS))
    assert auth.credentials(request({"authorization": "Bearer tok"})) == "bearer"
    assert auth.credentials(request({}, {"pm_agent_session": auth.new_session()})) == "cookie"
    assert auth.credentials(request({"authorization": "Bearer nope"})) is None
    assert auth.credentials(request({}, {"pm_agent_session": "tok"})) is None
    assert auth.token_matches("tok")
    assert not auth.token_matches("to")
    assert not auth.token_matches("")
    assert OperatorAuth(None, []).credentials(request({})) == "open"


@pytest.mark.parametrize(
    ("headers", "via", "refused"),
    [
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, "cookie", False),
        (
            {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9999"},
            "cookie",
            True,
        ),  # same site, other port
        ({"host": "127.0.0.1:8000", "origin": "https://evil.example"}, "open", True),
        ({"host": "127.0.0.1:8000", "origin": "null"}, "cookie", True),
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "same-origin"}, "cookie", False),
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "cross-site"}, "open", True),
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "same-site"}, "cookie", True),
        ({"host": "127.0.0.1:8000"}, "cookie", True),  # a cookie without Origin: not from our page
        ({"host": "127.0.0.1:8000"}, "bearer", False),  # curl with the token: no ambient credential
        ({"host": "127.0.0.1:8000"}, "open", False),
    ],
)
def test_changes_must_come_from_the_dashboards_own_origin(
    headers: dict[str, str], via: Any, refused: bool
) -> None:
    auth = OperatorAuth("tok", list(DEFAULT_ALLOWED_HOSTS))
    assert (auth.cross_site_refusal(request(headers), via) is not None) is refused


def test_the_host_rule_is_the_mcp_endpoints() -> None:
    allowed = list(DEFAULT_ALLOWED_HOSTS)
    assert host_allowed("127.0.0.1:8000", allowed)
    assert host_allowed("pm-agent", allowed)
    assert host_allowed("localhost:1", allowed)
    assert not host_allowed("evil.example:8000", allowed)
    assert not host_allowed("127.0.0.1.evil:80", allowed)
    assert not host_allowed(None, allowed)


async def test_failed_logins_count_per_address_and_over_the_limit_attempts_take_turns() -> None:
    clock = Clock()
    limit = LoginLimit(per_minute=2, max_waiting=3, clock=clock)
    assert await limit.turn("10.0.0.9")
    for _ in range(2):
        limit.failed("10.0.0.9")
    assert limit.failures("10.0.0.9") == 2
    assert await asyncio.wait_for(limit.turn("10.0.0.7"), 1)  # another address: never waits
    assert await asyncio.wait_for(limit.turn("10.0.0.9"), 1)  # over the limit: the first turn is now
    waiting = [asyncio.create_task(limit.turn("10.0.0.9")) for _ in range(3)]  # the next 30 s away
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in waiting)
    assert not await asyncio.wait_for(limit.turn("10.0.0.9"), 1)  # a fourth waiting one: refused
    for t in waiting:
        t.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    limit.failed("2001:db8::1")
    assert limit.failures("2001:db8::ffff") == 1  # one IPv6 host: its /64
    assert limit.failures("2001:db8:0:1::1") == 0
    assert address_key("::ffff:10.0.0.9") == "10.0.0.9"
    limit.succeeded("10.0.0.9")
    assert limit.failures("10.0.0.9") == 0
    limit.failed("10.0.0.8")
    clock.now += 61
    assert limit.failures("10.0.0.8") == 0


# ---------------------------------------------------------------------------- snapshot


def demo_board(tmp_path: Path, clock: Clock | None = None) -> Board:
    """Four tasks (one waits on two others), loaded at the board's own clock."""
    board = Board(connect(tmp_path / "b.db"), lease_seconds=30, clock=clock or Clock())
    spec = check_project(
        {
            "project": "demo",
            "tasks": [
                {"id": "build", "name": "Build", "required_skills": ["Docker"]},
                {"id": "test", "name": "Test", "required_skills": ["testing"]},
                {
                    "id": "ship",
                    "name": "Ship",
                    "required_skills": ["docker", "deploy"],
                    "dependencies": ["build", "test"],
                },
                {"id": "docs", "name": "Docs"},
            ],
        },
        "demo.yaml",
    )
    board.load_project(spec, "demo.yaml")
    return board


def test_the_snapshot_shows_columns_holders_waits_blockers_artifacts_and_events(tmp_path: Path) -> None:
    board = demo_board(tmp_path)
    board.register_agent("dev", "Dev <b>", "devops", ["docker"])
    board.register_agent("qa", "QA", "testing", ["testing"])
    assert board.request_next_task("dev").assignment.task_id == "build"  # type: ignore[union-attr]
    board.report_task_progress("dev", "build", "in_progress", 40, "layer 3/7")
    for i in range(7):
        board.log_artifact("dev", "build", "log", f"part {i}", None, {"big": "x" * 1000})
    board.request_next_task("qa")
    board.report_blocker("qa", "test", "3 tests failed: test_a, test_b", "high")
    snap = take_snapshot(board, now=Clock().now)
    columns = {c.status: c for c in snap.columns}
    (build,) = columns["in_progress"].tasks
    assert (build.holder, build.attempt, build.progress, build.required_skills) == ("dev", 1, 40, ["Docker"])
    assert build.lease_expires_at is not None
    assert build.artifact_count == 7
    assert [a.description for a in build.artifacts] == [f"part {i}" for i in range(2, 7)]
    assert "data" not in build.artifacts[0].model_dump()
    (docs, ship) = sorted(columns["todo"].tasks, key=lambda t: t.task_id)
    assert (ship.waiting_on, docs.waiting_on) == (["build", "test"], [])
    (blocker,) = snap.blockers
    assert (blocker.task_id, blocker.severity) == ("test", "high")
    stored = board.get_task_context("test").blockers[0]
    assert (blocker.description, blocker.resolution_suggestion) == (
        stored.description,
        stored.resolution_suggestion,
    )
    assert [a.agent_id for a in snap.agents] == ["dev", "qa"]  # working first
    assert snap.agents[0].name == "Dev <b>"  # shown as stored; the page inserts it as text
    kinds = [e.kind for e in snap.events]
    assert "renewed" not in kinds
    assert kinds[:2] == ["blocked", "assigned"]
    assert snap.project_status.total_tasks == 4


def test_a_column_shows_at_most_per_column_tasks_and_says_how_many_there_are(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    load_tasks(db, *({"id": f"t{i:03}", "name": f"T{i}"} for i in range(250)))
    snap = take_snapshot(Board(connect(db)), per_column=40)
    todo = next(c for c in snap.columns if c.status == "todo")
    assert (todo.total, len(todo.tasks), todo.tasks[0].task_id) == (250, 40, "t000")


# ---------------------------------------------------------------------------- metrics


def sample(metrics: BoardMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_counters_follow_the_commits_and_gauges_read_the_board(tmp_path: Path) -> None:
    clock = Clock()
    board = demo_board(tmp_path, clock)
    metrics = BoardMetrics(board, waiters=lambda: 3)
    assert sample(metrics, "pm_agent_ready_tasks", skills="docker") == 1
    assert sample(metrics, "pm_agent_ready_tasks", skills="deploy,docker") == 0  # a series even at 0
    assert sample(metrics, "pm_agent_ready_tasks", skills="") == 1
    board.register_agent("dev", "Dev", "devops", ["docker", "deploy"])
    board.register_agent("any", "Any", "misc", [])
    board.request_next_task("dev")
    board.request_next_task("any")
    board.report_task_progress("dev", "build", "completed", 100, "built")
    board.release_task("any", "docs", "shutting down")
    board.request_next_task("any")
    clock.now += 31  # docs' lease expires
    with pytest.raises(BoardError):
        board.report_task_progress("any", "docs", "in_progress", 10, "late")
    board.register_agent("qa", "QA", "testing", ["testing"])
    board.request_next_task("qa")
    board.report_blocker("qa", "test", "connection refused", "critical")
    board.resolve_blocker("test", "restarted the database")
    metrics.drain_pickups()
    assert sample(metrics, "pm_agent_task_assignments_total") == 4
    assert sample(metrics, "pm_agent_task_completions_total") == 1
    assert sample(metrics, "pm_agent_task_releases_total") == 1
    assert sample(metrics, "pm_agent_lease_expiries_total") == 1
    assert sample(metrics, "pm_agent_fencings_total") == 1
    assert sample(metrics, "pm_agent_blockers_total", severity="critical") == 1
    assert sample(metrics, "pm_agent_blocker_resolutions_total") == 1
    assert sample(metrics, "pm_agent_tasks", status="todo") == 3  # ship, docs (expired), test (resolved)
    assert sample(metrics, "pm_agent_tasks", status="done") == 1
    assert sample(metrics, "pm_agent_workers", status="idle") == 3
    assert sample(metrics, "pm_agent_ready_tasks", skills="testing") == 1
    assert sample(metrics, "pm_agent_ready_tasks", skills="docker") == 0
    assert sample(metrics, "pm_agent_in_progress_tasks", skills="testing") == 0
    board.request_next_task("qa")
    assert sample(metrics, "pm_agent_in_progress_tasks", skills="testing") == 1
    assert sample(metrics, "pm_agent_ready_tasks", skills="testing") == 0
    assert sample(metrics, "pm_agent_in_progress_tasks", skills="deploy,docker") == 0
    assert sample(metrics, "pm_agent_long_poll_waiters") == 3
    body, content_type = metrics.exposition(None)
    assert content_type.startswith("text/plain")
    assert b'pm_agent_in_progress_tasks{skills="testing"} 1.0' in body
    assert b"_created" not in body


def test_pickup_latency_runs_from_offerable_to_assigned(tmp_path: Path) -> None:
    clock = Clock()
    board = demo_board(tmp_path, clock)
    metrics = BoardMetrics(board, waiters=lambda: 0)
    board.register_agent("dev", "Dev", "devops", ["docker", "deploy", "testing"])
    clock.now += 7  # build waited 7 s since it was loaded
    board.request_next_task("dev")
    clock.now += 1
    board.report_task_progress("dev", "build", "completed", 100, "ok")
    board.request_next_task("dev")  # test: loaded 8 s ago
    board.report_task_progress("dev", "test", "completed", 100, "ok")  # ship offerable now
    clock.now += 2
    board.request_next_task("dev")  # ship: 2 s after its last dependency
    metrics.drain_pickups()
    assert sample(metrics, "pm_agent_task_pickup_latency_seconds_count") == 3
    assert sample(metrics, "pm_agent_task_pickup_latency_seconds_sum") == pytest.approx(7 + 8 + 2)
    assert sample(metrics, "pm_agent_task_pickup_latency_seconds_bucket", le="2.5") == 1


# ---------------------------------------------------------------------------- live pusher


async def test_the_pusher_coalesces_commits_and_builds_nothing_without_a_page() -> None:
    built: list[int] = []
    version = [0]

    def build() -> bytes:
        built.append(len(built))
        return json.dumps({"n": len(built)}).encode()

    live = LiveBoard(build, lambda: version[0], min_interval=0.05, watch_interval=0.02, refresh=60)
    pusher = asyncio.create_task(live.run())
    for _ in range(50):
        live.on_commit(None)  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert built == []  # no page open
    sub = live.admit()
    assert sub is not None
    stream = live.stream(sub)
    assert await anext(stream) == b"retry: 1000\n\n"
    assert b'"n": 1' in await anext(stream)
    for _ in range(100):  # a burst of commits
        live.on_commit(None)  # type: ignore[arg-type]
        await asyncio.sleep(0)
    frame = await asyncio.wait_for(anext(stream), 5)
    assert frame.startswith(b"event: board\ndata: ")
    await asyncio.sleep(0.2)
    assert len(built) <= 4  # one for the page, then one or two for the whole burst
    version[0] += 1  # another process committed
    assert b"event: board" in await asyncio.wait_for(anext(stream), 5)
    live.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 5)
    assert live.subscribers == 0
    pusher.cancel()


async def test_every_reader_shares_one_snapshot_while_nothing_changed() -> None:
    """A page connecting, or a GET of the board, costs no build while the last one is current;
    readers arriving together share the one build they wait for."""
    built: list[int] = []
    version = [0]

    def build() -> bytes:
        built.append(len(built))
        return json.dumps({"n": len(built)}).encode()

    live = LiveBoard(build, lambda: version[0], min_interval=0.05, watch_interval=0.02, refresh=60)
    pusher = asyncio.create_task(live.run())
    first = await asyncio.gather(*(live.latest() for _ in range(100)))
    assert built == [0]
    assert all(s is first[0] for s in first)
    assert await live.latest() is first[0]  # nothing changed: no build
    streams = []
    for _ in range(20):
        sub = live.admit()
        assert sub is not None
        streams.append(live.stream(sub))
    frames = [await anext(s) for s in streams] + [await anext(s) for s in streams]
    assert frames.count(first[0].event) == 20
    assert built == [0]
    version[0] += 1  # another process committed: the next reader waits for a new build
    second = await live.latest()
    assert second is not None
    assert second is not first[0]
    assert built == [0, 1]
    live.close()
    pusher.cancel()


async def drain(stream: Any) -> list[bytes]:
    return [chunk async for chunk in stream]


async def test_streams_are_capped_end_with_their_session_and_after_their_age() -> None:
    live = LiveBoard(lambda: b"{}", lambda: 0, min_interval=0.01, max_streams=2, max_age=0.3, keepalive=0.05)
    pusher = asyncio.create_task(live.run())
    a, b = live.admit("session-a"), live.admit("session-b")
    assert a is not None
    assert b is not None
    assert live.admit() is None  # the cap
    stream_a, stream_b = live.stream(a), live.stream(b)
    await anext(stream_a), await anext(stream_b)
    assert live.end_session("session-a") == 1
    await asyncio.wait_for(drain(stream_a), 5)  # its session logged out: the stream ends
    assert live.subscribers == 1
    assert live.admit() is not None  # the freed place
    tail = await asyncio.wait_for(drain(stream_b), 5)  # ends by itself after max_age
    assert b": keepalive\n\n" in tail
    live.close()
    pusher.cancel()


# ---------------------------------------------------------------------------- terminal


def test_the_terminal_view_shows_board_text_inert(tmp_path: Path) -> None:
    board = demo_board(tmp_path)
    board.register_agent("evil\x1b]52;c;aGk=\x07", "[red]x[/red]", "[bold]role", ["docker"])
    board.request_next_task("evil\x1b]52;c;aGk=\x07")
    console = Console(record=True, width=200, force_terminal=False)
    console.print(render(take_snapshot(board), console))
    text = console.export_text()
    assert "\\x1b]52;c;aGk=\\x07" in text
    assert "\x1b" not in text
    assert "[bold]role" in text
    assert "build" in text
    assert "waiting on build, test" in text
