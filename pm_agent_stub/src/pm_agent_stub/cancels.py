"""A client's `notifications/cancelled` ends its own call that is still waiting (issue 24 item 7).

The official TypeScript SDK (1.x, protocol 2025-11-25) gives up on a call at its own
timeout (60 s unless the caller says otherwise) by POSTing `notifications/cancelled` with
the call's JSON-RPC id, and keeps the call's HTTP request open. How the MCP Python SDK (2.3,
installed) delivers that notification, checked against its source and by experiment:

- **stateless HTTP** (what the stub serves): every POST gets a transport and a dispatcher of
  its own, so the notification's dispatcher has no call of that id in flight and the call is
  never cancelled: it runs on and answers. The notification still reaches the server's
  middleware (`MCPServer.middleware`), with its own HTTP request (another connection).
- **stateful HTTP** and **stdio**: the session's dispatcher cancels the call's handler (its
  task gets `CancelledError`) and, over HTTP, answers it with error -32800 "Request cancelled".
- **protocol 2026-07-28**: a client cancels by closing the call's stream; the notification is
  answered 202 and dropped before any middleware. A closed stream is a disconnect, which the
  long-poll already watches (`long_poll_abandoned`).

So for the stateless case the stub matches the notification to the waiting call itself. A
JSON-RPC id is only unique per client (every TypeScript client counts 0, 1, 2, ...), and a
stateless request carries no session; the key is therefore (client address, a digest of its
`Authorization` header, the id). Two clients behind one address with one token waiting under
the same id are both ended: each answers "no task, ask again at once", which costs the other a
round trip and can lose nothing (ending a wait assigns nothing; anyone who may call the stub
may already end an agent's wait by calling as that agent). A cancellation of a call that
already answered, or of one that never waits, changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CallKey = tuple[str, str, str]


def call_key(request: Any, request_id: object) -> CallKey | None:
    """Who sent a call and under which id, as far as a stateless HTTP request says; None off HTTP
    (stdio, in memory: there the SDK's session cancels the call itself) or without an id."""
    headers = getattr(request, "headers", None)
    if headers is None or isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    client = getattr(request, "client", None)
    peer = str(client.host) if client is not None else ""
    credentials = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()
    return peer, credentials, str(request_id)  # "7" and 7 are one id, as the SDKs correlate them


class CallCancels:
    """Waiting calls, by `call_key`, with what ends each (on the event loop only)."""

    def __init__(self) -> None:
        self._waiting: dict[CallKey, list[Callable[[], None]]] = {}

    @contextmanager
    def watch(self, request: Any, request_id: object, on_cancel: Callable[[], None]) -> Iterator[None]:
        """While inside, a cancellation of this call runs `on_cancel()` (once)."""
        key = call_key(request, request_id)
        if key is None:
            yield
            return
        self._waiting.setdefault(key, []).append(on_cancel)
        try:
            yield
        finally:
            left = self._waiting.get(key, [])
            if on_cancel in left:
                left.remove(on_cancel)
            if not left:
                self._waiting.pop(key, None)

    def cancel(self, request: Any, request_id: object) -> int:
        """A client cancelled its call `request_id`: end the waiting calls it names; how many."""
        key = call_key(request, request_id)
        ended = self._waiting.pop(key, []) if key is not None else []
        for on_cancel in ended:
            on_cancel()
        return len(ended)

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self._waiting.values())
