"""Slow clients cannot hold the stub's memory or descriptors; slow responses (long-polls) still work.

Issue 17, Medium 7: a connection that announced a 1 MiB body and sent all but one byte
pinned ~1.24 MiB in the stub forever, and one that never finished its headers held a
descriptor forever. Against real stub processes over raw sockets:

- headers not finished within `PM_HTTP_HEADER_TIMEOUT`: 408 and closed (silent: closed);
- body not finished within `PM_HTTP_BODY_TIMEOUT`: 408 and closed;
- a body refused before it was read (401): the connection is closed, not read forever;
- no more than `PM_HTTP_MAX_BODIES_IN_FLIGHT` slow bodies are buffered: the others get 503 at
  once, while requests whose body has arrived whole are still served;
- no more than `PM_HTTP_MAX_CONNECTIONS` connections: the next request gets 503;
- after the timeouts the stub holds the sockets it held before the attack;
- a long-poll that waits longer than both timeouts still gets its answer.

No assert is on speed: every wait is a generous deadline on an outcome.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx2
import pytest

from pm_agent_stub.testing import StubProcess, start_stub, wait_until
from tests.reliability.rpc import HEADERS, tool_answer, tool_body
from tests.reliability.slow_clients import (
    answer,
    open_sockets,
    silent,
    slow_body,
    slow_header,
    wait_closed,
)

TOKEN = "slow-clients-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OUTCOME_DEADLINE = 60.0  # far beyond the 1-2 s timeouts: only a stub that never acts fails it


@pytest.fixture(scope="module")
def quick_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """Short timeouts, so their effect shows within a test."""
    proc = start_stub(
        tmp_path_factory.mktemp("quick") / "board.db",
        env={"PM_HTTP_HEADER_TIMEOUT": "1", "PM_HTTP_BODY_TIMEOUT": "2", "PM_AGENT_TOKEN": TOKEN},
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def capped_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """Long timeouts and small caps, so the caps (not the timeouts) decide."""
    proc = start_stub(
        tmp_path_factory.mktemp("capped") / "board.db",
        env={
            "PM_HTTP_HEADER_TIMEOUT": "60",
            "PM_HTTP_BODY_TIMEOUT": "60",
            "PM_HTTP_MAX_BODIES_IN_FLIGHT": "4",
            "PM_HTTP_MAX_CONNECTIONS": "24",
        },
    )
    yield proc
    proc.stop()


def ping(stub: StubProcess, headers: dict[str, str] | None = None, echo: str = "x") -> httpx2.Response:
    with httpx2.Client(timeout=60) as client:
        return client.post(
            stub.url, content=tool_body("ping", {"echo": echo}), headers={**HEADERS, **(headers or {})}
        )


def test_slow_body_gets_408_and_is_closed(quick_stub: StubProcess) -> None:
    sock = slow_body(quick_stub.port, headers=AUTH)
    try:
        status = answer(sock, OUTCOME_DEADLINE)
        assert status.startswith("HTTP/1.1 408"), status
        assert wait_closed(sock, OUTCOME_DEADLINE)
    finally:
        sock.close()
    assert tool_answer(ping(quick_stub, AUTH))["pong"] is True


def test_unfinished_headers_get_408_and_are_closed(quick_stub: StubProcess) -> None:
    partial, quiet = slow_header(quick_stub.port), silent(quick_stub.port)
    try:
        status = answer(partial, OUTCOME_DEADLINE)
        assert status.startswith("HTTP/1.1 408"), status
        assert wait_closed(partial, OUTCOME_DEADLINE)
        assert answer(quiet, OUTCOME_DEADLINE) == "closed"  # nothing asked, so no answer; just closed
    finally:
        partial.close()
        quiet.close()


def test_body_refused_before_reading_does_not_hold_the_connection(quick_stub: StubProcess) -> None:
    sock = slow_body(quick_stub.port)  # no token: 401 before the body is read
    try:
        status = answer(sock, OUTCOME_DEADLINE)
        assert status.startswith("HTTP/1.1 401"), status
        assert wait_closed(sock, OUTCOME_DEADLINE)
    finally:
        sock.close()


def test_sockets_come_back_after_the_timeouts(quick_stub: StubProcess) -> None:
    pid = quick_stub.proc.pid
    baseline = open_sockets(pid)
    socks = [slow_body(quick_stub.port, headers=AUTH) for _ in range(10)]
    socks += [slow_header(quick_stub.port) for _ in range(10)] + [silent(quick_stub.port) for _ in range(10)]
    try:
        wait_until(lambda: open_sockets(pid) <= baseline, timeout=OUTCOME_DEADLINE, interval=0.2,
                   message=f"the stub back to {baseline} sockets")  # fmt: skip
    finally:
        for sock in socks:
            sock.close()


def test_long_poll_outlasts_both_timeouts(quick_stub: StubProcess) -> None:
    """A long-poll is a slow response, not a slow request: it waits its full time and answers."""
    with httpx2.Client(timeout=60, headers={**HEADERS, **AUTH}) as client:
        registered = client.post(
            quick_stub.url,
            content=tool_body(
                "register_agent", {"agent_id": "lp-1", "name": "LP", "role": "r", "skills": ["nobody"]}
            ),
        )
        assert tool_answer(registered)["success"] is True
        started = time.monotonic()
        polled = client.post(
            quick_stub.url, content=tool_body("request_next_task", {"agent_id": "lp-1", "wait_seconds": 4})
        )
        waited = time.monotonic() - started
        outcome = tool_answer(polled)
        assert outcome["success"] is True, outcome
        assert outcome["has_task"] is False, outcome
        assert waited >= 3.5, f"the long-poll returned after {waited:.1f} s, before its wait was over"
        # The same pooled connection (or a fresh one) serves the next call.
        assert tool_answer(client.post(quick_stub.url, content=tool_body("ping", {})))["pong"] is True


def test_slow_bodies_beyond_the_cap_get_503_and_fast_requests_still_pass(capped_stub: StubProcess) -> None:
    socks = [slow_body(capped_stub.port) for _ in range(6)]
    try:
        refused: list[socket.socket] = []

        def two_refused() -> bool:
            for sock in socks:
                if sock not in refused and answer(sock, 0.05).startswith("HTTP/1.1 503"):
                    refused.append(sock)
            return len(refused) >= 2

        wait_until(two_refused, timeout=OUTCOME_DEADLINE, interval=0.1, message="2 of 6 slow bodies refused")
        assert len(refused) == 2
        held = [s for s in socks if s not in refused]
        assert [answer(s, 0.05) for s in held] == ["open"] * 4  # buffered, waiting for their last byte
        # A request whose body arrives whole needs no slot: served while all 4 are taken.
        assert tool_answer(ping(capped_stub))["pong"] is True
        # A big body (read in several pieces) needs a slot: 503 now ...
        big = "y" * (600 * 1024)
        assert ping(capped_stub, echo=big).status_code == 503
        for sock in held:
            sock.close()
        # ... and served once the slow clients have gone (their slots are released on disconnect).
        wait_until(lambda: ping(capped_stub, echo=big).status_code == 200, timeout=OUTCOME_DEADLINE,
                   interval=0.2, message="a big body accepted after the slow clients left")  # fmt: skip
    finally:
        for sock in socks:
            sock.close()


def test_connections_beyond_the_cap_get_503(capped_stub: StubProcess) -> None:
    socks = [silent(capped_stub.port) for _ in range(24)]
    try:
        # Once the stub has accepted all 24 (idle for up to 60 s), the next request is refused.
        wait_until(lambda: ping(capped_stub).status_code == 503, timeout=OUTCOME_DEADLINE, interval=0.2,
                   message="503 while 24 idle connections are held")  # fmt: skip
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: ping(capped_stub).status_code == 200, timeout=OUTCOME_DEADLINE, interval=0.2,
               message="served again once the idle connections closed")  # fmt: skip
