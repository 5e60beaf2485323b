"""What many viewers may cost a stub, against real stub processes over real sockets (issue 24, item 3).

- readers share snapshots: forty pages connecting at once and a hundred GETs of the board
  cost a handful of builds, not one each;
- streams are capped (`PM_DASHBOARD_MAX_STREAMS`): one more is refused with 503, its reason
  and `Retry-After`, and a place freed is taken again;
- a stream ends by itself after `PM_DASHBOARD_STREAM_MAX_SECONDS`;
- a client that stops reading is disconnected after `PM_HTTP_WRITE_TIMEOUT` and its place freed;
- on the board thread itself (a real board file): viewers' reads never run ahead of the
  workers' calls queued with them, except their bounded share.

No assert is on speed (tests/reliability/dashboard_streams.py measures it): every wait is a
generous deadline on an outcome.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from pm_agent_stub.board import open_board
from pm_agent_stub.board_thread import BoardThread
from pm_agent_stub.settings import StubSettings
from pm_agent_stub.testing import StubProcess, wait_until
from tests.dashboard.web import http, parse_metrics
from tests.reliability.rpc import post, tool_answer, tool_body

LONG = [f"skill-{i:02d}-" + "s" * 91 for i in range(64)]


def metric(stub: StubProcess, name: str) -> float:
    samples = parse_metrics(http(stub.port, "GET", "/metrics").text)
    return sum(v for (n, _labels), v in samples.items() if n == name)


def open_stream(port: int, rcvbuf: int | None = None) -> tuple[socket.socket, str]:
    """A `GET /dashboard/api/stream`; the socket and the status line."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(1 if rcvbuf else 4096)
        assert chunk, "the stub closed the stream before answering"
        head += chunk
    return sock, head.split(b"\r\n")[0].decode()


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the stub sends until it ends the response (chunked: the last chunk) or closes."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\r\n0\r\n\r\n"):
            break
    return data


def register(stub: StubProcess, agent_id: str, skills: list[str]) -> None:
    with httpx2.Client(timeout=60) as client:
        tool_answer(
            post(
                client,
                stub.url,
                tool_body(
                    "register_agent", {"agent_id": agent_id, "name": "N", "role": "r", "skills": skills}
                ),
            )
        )


def test_forty_pages_connecting_at_once_share_a_few_snapshots(
    stub_factory: Callable[..., StubProcess],
) -> None:
    stub = stub_factory()
    before = metric(stub, "pm_agent_dashboard_snapshot_seconds_count")
    streams = [open_stream(stub.port) for _ in range(40)]
    try:
        assert {status for _sock, status in streams} == {"HTTP/1.1 200 OK"}
        for sock, _ in streams:  # each got its first board event
            data = b""
            while b"event: board" not in data:
                data += sock.recv(65536)
        with httpx2.Client(timeout=60) as client:
            for _ in range(100):
                assert client.get(f"{stub.base_url}/dashboard/api/board").status_code == 200
        built = metric(stub, "pm_agent_dashboard_snapshot_seconds_count") - before
        assert 1 <= built <= 10, built  # before: 140, one per stream and one per GET
    finally:
        for sock, _ in streams:
            sock.close()


def test_one_stream_more_than_the_cap_is_refused_with_the_reason(
    stub_factory: Callable[..., StubProcess],
) -> None:
    stub = stub_factory(env={"PM_DASHBOARD_MAX_STREAMS": "3"})
    held = [open_stream(stub.port) for _ in range(3)]
    try:
        assert [status for _s, status in held] == ["HTTP/1.1 200 OK"] * 3
        refused = http(stub.port, "GET", "/dashboard/api/stream")
        assert refused.status == 503
        assert refused.headers["retry-after"]
        body = refused.json()
        assert body["error"] == "busy"
        assert "PM_DASHBOARD_MAX_STREAMS=3" in body["message"]
        assert "close a dashboard tab" in body["message"]
        assert http(stub.port, "GET", "/dashboard/api/board").status == 200  # reads are not streams
        assert metric(stub, "pm_agent_dashboard_streams") == 3
        held.pop()[0].close()
        wait_until(lambda: metric(stub, "pm_agent_dashboard_streams") == 2, 30, 0.1, "a freed place")
        again, status = open_stream(stub.port)
        held.append((again, status))
        assert status == "HTTP/1.1 200 OK"
        assert '"event": "dashboard_stream_refused"' in stub.logs()
    finally:
        for sock, _ in held:
            sock.close()


def test_a_stream_ends_by_itself_after_its_age(stub_factory: Callable[..., StubProcess]) -> None:
    stub = stub_factory(env={"PM_DASHBOARD_STREAM_MAX_SECONDS": "2"})
    sock, status = open_stream(stub.port)
    with sock:
        assert status == "HTTP/1.1 200 OK"
        data = read_until_closed(sock, 60)
        assert b"event: board" in data
        assert data.endswith(b"\r\n0\r\n\r\n")  # the response ended properly, and the page reconnects
    wait_until(lambda: metric(stub, "pm_agent_dashboard_streams") == 0, 30, 0.1, "the stream's place freed")


def test_a_client_that_stops_reading_is_disconnected(stub_factory: Callable[..., StubProcess]) -> None:
    stub = stub_factory(env={"PM_HTTP_WRITE_TIMEOUT": "1"})
    for i in range(100):  # ~650 KB snapshots: a few fill what the socket buffers hold
        register(stub, f"agent-{i:02d}", LONG)
    sock, status = open_stream(stub.port, rcvbuf=4096)
    with sock, httpx2.Client(timeout=60) as client:
        assert status == "HTTP/1.1 200 OK"
        deadline = time.monotonic() + 120
        beat = 0
        while '"event": "slow reader closed"' not in stub.logs():  # new snapshots while it reads nothing
            assert time.monotonic() < deadline, "the stub still writes to a client that reads nothing"
            arguments = {"agent_id": f"agent-{beat % 100:02d}", "name": "N", "role": "r", "skills": LONG}
            tool_answer(post(client, stub.url, tool_body("register_agent", arguments)))  # an event
            beat += 1
            time.sleep(0.1)
        wait_until(lambda: metric(stub, "pm_agent_dashboard_streams") == 0, 30, 0.1, "its place freed")
    assert http(stub.port, "GET", "/healthz").status == 200


def test_viewers_reads_wait_for_the_workers_calls_queued_with_them(tmp_path: Path) -> None:
    """A real board thread, held busy by one call while six viewer reads and six worker calls
    queue: every call runs before every read except the one the viewers' share lets through."""
    board = open_board(StubSettings().model_copy(update={"db": tmp_path / "b.db"}))
    thread = BoardThread(board)
    order: list[str] = []

    def job(name: str, seconds: float = 0.0) -> None:
        time.sleep(seconds)
        order.append(name)

    async def run() -> None:
        busy = asyncio.ensure_future(thread.call(job, "busy", 0.3))
        await asyncio.sleep(0.05)
        jobs = []
        for i in range(6):
            jobs.append(thread.view(job, f"view-{i}", 0.01))
            jobs.append(thread.call(job, f"call-{i}"))
        await asyncio.gather(busy, *jobs)

    try:
        asyncio.run(run())
    finally:
        thread.close()
    assert order[0] == "busy"
    calls = [i for i, name in enumerate(order) if name.startswith("call-")]
    views = [i for i, name in enumerate(order) if name.startswith("view-")]
    assert [order[i] for i in views] == [f"view-{i}" for i in range(6)]  # in their own order
    assert sum(1 for v in views if v < max(calls)) <= 2, order  # at most their share ran in between


def test_the_board_endpoint_and_streams_show_another_processes_commit(
    stub_factory: Callable[..., StubProcess],
) -> None:
    """A shared snapshot is never stale: a commit of another process is in the next read."""
    from pm_agent_stub.testing import load_tasks, task

    stub = stub_factory()
    first = http(stub.port, "GET", "/dashboard/api/board").json()
    assert first["project_status"]["total_tasks"] == 0
    load_tasks(stub.db, task("later", "x"))
    assert http(stub.port, "GET", "/dashboard/api/board").json()["project_status"]["total_tasks"] == 1
    register(stub, "w-1", ["x"])  # this process's commit
    agents = json.loads(http(stub.port, "GET", "/dashboard/api/board").body)["agents"]
    assert [a["agent_id"] for a in agents] == ["w-1"]
