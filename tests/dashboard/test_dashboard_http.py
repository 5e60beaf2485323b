"""The dashboard's endpoints on a real stub process over real HTTP: who may see what, which
requests may change the board, the event stream, and /metrics (its auth, its format, promtool)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, task, wait_until
from tests.dashboard.web import assert_promtool_accepts, http, parse_metrics, post_json, value
from tests.integration.workerproc import board

TOKEN = "dash-test-token-7f3a9c"


@pytest.fixture
def open_stub(stub_factory: Callable[..., StubProcess]) -> StubProcess:
    return stub_factory()


@pytest.fixture
def token_stub(stub_factory: Callable[..., StubProcess]) -> StubProcess:
    return stub_factory(env={"PM_AGENT_TOKEN": TOKEN})


async def block_a_task(stub: StubProcess, task_id: str = "flaky") -> None:
    """Put one task on the board and have an agent block it (over MCP, as a worker would)."""
    load_tasks(stub.db, task(task_id, "qa"))
    headers = {"Authorization": f"Bearer {TOKEN}"} if "PM_AGENT_TOKEN" in stub.env else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http_client,
        mcp.Client(streamable_http_client(stub.url, http_client=http_client)) as client,
    ):
        await call_tool(
            client, "register_agent", {"agent_id": "qa-1", "name": "QA", "role": "qa", "skills": ["qa"]}
        )
        offer = await call_tool(client, "request_next_task", {"agent_id": "qa-1"})
        assert offer["assignment"]["task_id"] == task_id
        await call_tool(
            client,
            "report_blocker",
            {
                "agent_id": "qa-1",
                "task_id": task_id,
                "blocker_description": "connection refused by db:5432",
                "severity": "high",
            },
        )


def status_of(stub: StubProcess, task_id: str) -> str:
    return str(board(stub.db)["by_id"][task_id]["status"])


# ---------------------------------------------------------------------------- without a token


def test_the_page_and_its_script_are_served_with_a_strict_policy(open_stub: StubProcess) -> None:
    for path in ("/", "/dashboard"):
        page = http(open_stub.port, "GET", path)
        assert page.status == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert '<script src="/dashboard/static/dashboard.js" defer></script>' in page.text
        assert "<script>" not in page.text  # no inline script: the policy would refuse it
    script = http(open_stub.port, "GET", "/dashboard/static/dashboard.js")
    assert script.status == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert ".innerHTML" not in script.text  # board text goes in as text only
    for other in ("/dashboard/static/login.html", "/dashboard/static/..%2F__init__.py"):
        assert http(open_stub.port, "GET", other).status in (404, 405)  # only the named assets are served
    assert http(open_stub.port, "GET", "/healthz").status == 200


def test_the_board_endpoint_is_the_snapshot(open_stub: StubProcess) -> None:
    load_tasks(open_stub.db, task("a", "x"), task("b", "x", dependencies=["a"]))
    snap = http(open_stub.port, "GET", "/dashboard/api/board").json()
    todo = next(c for c in snap["columns"] if c["status"] == "todo")
    assert {t["task_id"]: t["waiting_on"] for t in todo["tasks"]} == {"a": [], "b": ["a"]}
    assert snap["project_status"]["total_tasks"] == 2


def test_a_foreign_host_header_is_refused_but_metrics_answer_any_address(open_stub: StubProcess) -> None:
    """A DNS-rebinding page reaches the stub under its own name; Prometheus scrapes by address."""
    for path in ("/", "/dashboard/api/board", "/dashboard/api/stream", "/login"):
        refused = http(open_stub.port, "GET", path, {"Host": f"evil.example:{open_stub.port}"})
        assert refused.status == 421, path
        assert "PM_AGENT_ALLOWED_HOSTS" in refused.json()["message"]
    assert http(open_stub.port, "GET", "/metrics", {"Host": f"10.1.2.3:{open_stub.port}"}).status == 200


async def test_resolving_needs_a_same_origin_json_request(open_stub: StubProcess) -> None:
    await block_a_task(open_stub)
    port = open_stub.port
    body = {"task_id": "flaky", "resolution": "db restarted"}
    evil = post_json(port, "/dashboard/api/resolve", body, {"Origin": "http://127.0.0.1:1"})
    assert (evil.status, evil.json()["error"]) == (403, "cross_site")
    assert post_json(port, "/dashboard/api/resolve", body, {"Sec-Fetch-Site": "cross-site"}).status == 403
    form = http(
        port,
        "POST",
        "/dashboard/api/resolve",
        {"Content-Type": "text/plain", "Origin": f"http://127.0.0.1:{port}"},
        json.dumps(body).encode(),
    )
    assert form.status == 415
    assert status_of(open_stub, "flaky") == "blocked"
    bad = post_json(
        port, "/dashboard/api/resolve", {"task_id": "flaky"}, {"Origin": f"http://127.0.0.1:{port}"}
    )
    assert bad.status == 400
    assert "resolution" in bad.json()["message"]
    missing = post_json(port, "/dashboard/api/resolve", {"task_id": "nope", "resolution": "x"})
    assert missing.status == 404
    ok = post_json(port, "/dashboard/api/resolve", body, {"Origin": f"http://127.0.0.1:{port}"})
    assert ok.status == 200
    assert ok.json()["resolved"] == 1
    assert status_of(open_stub, "flaky") == "todo"
    assert '"event": "dashboard_resolve"' in open_stub.logs()


def read_events(sock_file: Any, want: int, timeout: float) -> list[dict[str, Any]]:
    """`want` board events from an open SSE response."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    event = None
    while len(found) < want:
        assert time.monotonic() < deadline, f"only {len(found)} board events in {timeout}s"
        line = sock_file.readline().decode()
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event == "board":
            found.append(json.loads(line[6:]))
    return found


async def test_the_stream_sends_the_board_and_again_after_each_change(open_stub: StubProcess) -> None:
    with socket.create_connection(("127.0.0.1", open_stub.port), timeout=30) as sock:
        sock.sendall(
            f"GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:{open_stub.port}\r\n\r\n".encode()
        )
        stream = sock.makefile("rb")
        assert b"200" in stream.readline()
        (first,) = read_events(stream, 1, 30)
        assert first["project_status"]["total_tasks"] == 0
        load_tasks(open_stub.db, task("later", "x"))  # another process's commit
        (second,) = read_events(stream, 1, 30)
        assert second["project_status"]["total_tasks"] == 1
        async with mcp.Client(open_stub.url) as client:  # this process's commit
            await call_tool(
                client, "register_agent", {"agent_id": "w-1", "name": "W", "role": "r", "skills": ["x"]}
            )
        (third,) = read_events(stream, 1, 30)
        assert [a["agent_id"] for a in third["agents"]] == ["w-1"]
        samples = parse_metrics(http(open_stub.port, "GET", "/metrics").text)
        assert value(samples, "pm_agent_dashboard_streams") == 1


# ---------------------------------------------------------------------------- with a token


def test_with_a_token_nothing_shows_without_credentials(token_stub: StubProcess) -> None:
    port = token_stub.port
    page = http(port, "GET", "/")
    assert (page.status, page.headers["location"]) == (303, "/login")
    for path in ("/dashboard/api/board", "/dashboard/api/stream", f"/dashboard/api/board?token={TOKEN}"):
        refused = http(port, "GET", path)
        assert refused.status == 401, path
        assert "/login" in refused.json()["message"]
    assert http(port, "GET", "/metrics").status == 401
    assert http(port, "GET", "/metrics", {"Authorization": "Bearer wrong"}).status == 401
    assert http(port, "GET", "/healthz").status == 200
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert http(port, "GET", "/dashboard/api/board", bearer).status == 200
    assert http(port, "GET", "/metrics", bearer).status == 200
    assert post_json(port, "/dashboard/api/resolve", {"task_id": "x", "resolution": "y"}).status == 401
    login = http(port, "GET", "/login")
    assert login.status == 200
    assert 'type="password"' in login.text


def login(port: int, token: str, origin: str | None = None) -> Any:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": origin or f"http://127.0.0.1:{port}",
    }
    return http(port, "POST", "/login", headers, f"token={token}".encode())


async def test_logging_in_sets_a_strict_httponly_cookie_that_opens_the_board(token_stub: StubProcess) -> None:
    port = token_stub.port
    wrong = login(port, "not-the-token")
    assert wrong.status == 401
    assert "That is not the stub" in wrong.text
    assert not wrong.cookies
    assert login(port, TOKEN, origin="http://127.0.0.1:1").status == 403  # login CSRF
    ok = login(port, TOKEN)
    assert (ok.status, ok.headers["location"]) == (303, "/")
    (cookie,) = ok.cookies
    assert TOKEN not in cookie
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    session = {"Cookie": cookie.split(";")[0]}
    assert http(port, "GET", "/", session).status == 200
    assert http(port, "GET", "/dashboard/api/board", session).status == 200
    assert http(port, "GET", "/metrics", session).status == 200
    await block_a_task(token_stub)
    body = {"task_id": "flaky", "resolution": "fixed"}
    assert post_json(port, "/dashboard/api/resolve", body, session).status == 403  # a cookie without Origin
    ok_resolve = post_json(
        port, "/dashboard/api/resolve", body, {**session, "Origin": f"http://127.0.0.1:{port}"}
    )
    assert ok_resolve.status == 200
    bearer = post_json(port, "/dashboard/api/resolve", body, {"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status == 200  # scripts with the token need no Origin
    out = http(port, "POST", "/logout", {**session, "Origin": f"http://127.0.0.1:{port}"})
    assert out.status == 303
    assert "max-age=0" in out.cookies[0].lower()
    logs = token_stub.logs()
    assert TOKEN not in logs
    assert cookie.split(";")[0].split("=", 1)[1] not in logs
    assert '"event": "dashboard_login_failed"' in logs


def test_metrics_public_opens_metrics_only(stub_factory: Callable[..., StubProcess]) -> None:
    stub = stub_factory(env={"PM_AGENT_TOKEN": TOKEN, "PM_METRICS_PUBLIC": "1"})
    assert http(stub.port, "GET", "/metrics").status == 200
    assert http(stub.port, "GET", "/dashboard/api/board").status == 401
    assert http(stub.port, "GET", "/").status == 303


# ---------------------------------------------------------------------------- metrics


async def test_metrics_count_the_calls_and_pass_promtool(open_stub: StubProcess) -> None:
    await block_a_task(open_stub)
    post_json(open_stub.port, "/dashboard/api/resolve", {"task_id": "flaky", "resolution": "retry"})
    async with mcp.Client(open_stub.url) as client:
        await call_tool(
            client,
            "report_task_progress",
            {
                "agent_id": "nobody",
                "task_id": "flaky",
                "status": "in_progress",
                "progress": 1,
                "message": "x",
            },
        )
    scrape = http(open_stub.port, "GET", "/metrics")
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(scrape.text)
    assert value(samples, "pm_agent_task_assignments_total") == 1
    assert value(samples, "pm_agent_blockers_total", severity="high") == 1
    assert value(samples, "pm_agent_blocker_resolutions_total") == 1
    assert value(samples, "pm_agent_tasks", status="todo") == 1
    assert value(samples, "pm_agent_ready_tasks", skills="qa") == 1
    assert value(samples, "pm_agent_tool_call_duration_seconds_count", tool="report_blocker") == 1
    assert (
        value(
            samples,
            "pm_agent_tool_call_errors_total",
            tool="report_task_progress",
            error="agent_not_registered",
        )
        == 1
    )
    assert value(samples, "pm_agent_task_pickup_latency_seconds_count") == 1
    openmetrics = http(
        open_stub.port, "GET", "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    assert_promtool_accepts(scrape.body)


def test_a_scrape_sees_what_other_processes_wrote(open_stub: StubProcess) -> None:
    """Gauges are read from the file at scrape time; counters are this process's own events."""
    before = parse_metrics(http(open_stub.port, "GET", "/metrics").text)
    load_tasks(open_stub.db, task("x1", "Rare"), task("x2", "rare"), task("x3", "rare", dependencies=["x1"]))
    # /healthz never reads the board (it answers while the file is locked): the scrape does.
    wait_until(
        lambda: (
            value(
                parse_metrics(http(open_stub.port, "GET", "/metrics").text), "pm_agent_tasks", status="todo"
            )
            == 3
        )
    )
    after = parse_metrics(http(open_stub.port, "GET", "/metrics").text)
    assert value(after, "pm_agent_ready_tasks", skills="rare") == 2
    assert value(after, "pm_agent_tasks", status="todo") == 3
    assert value(after, "pm_agent_tasks_loaded_total") == value(before, "pm_agent_tasks_loaded_total")
