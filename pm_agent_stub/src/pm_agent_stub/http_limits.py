"""Slow clients: deadlines on receiving a request, and caps on what slow clients can hold.

uvicorn (0.54) bounds neither the time a client takes to send its headers nor its body:
the keep-alive timer only runs between requests and every byte received cancels it, and
`limit_concurrency` answers 503 only once a request's headers are complete. A client that
announces a 1 MiB body and withholds its last byte otherwise pins the buffered body, and
one that never ends its headers a descriptor, for as long as it likes. So:

- `SlowClientProtocol` (uvicorn's h11 protocol plus one timer): a request's headers must be
  complete within `header_timeout` of the connection opening or of the previous response
  ending (else 408 and closed; a connection that sent nothing is just closed); a body still
  arriving after its response was sent (401, 413, 503) gets `body_timeout` more, then the
  connection is closed. When the stub closes such a connection right after answering (the
  client sent `Connection: close`), it first half-closes and discards the rest of the body
  (a lingering close): closing with unread data makes the kernel reset the connection, and
  the reset can overtake the answer that says what was wrong.
- `BodyDeadline` (ASGI): the whole body must arrive within `body_timeout` of its headers
  (else 408 and closed), at most `max_bytes` of it (else 413), and at most `max_in_flight`
  bodies are buffered while still arriving (else 503 at once). A body that arrived whole
  needs no slot, so slow clients cannot starve fast ones.

- `SlowClientProtocol` also bounds a client that stops *reading*: once the stub's writes to
  a connection are paused (the client's window and our buffer are full), the client has
  `write_timeout` to take some of it; a connection that took nothing for that long is
  aborted (its buffered answer dropped). A dashboard page that stops reading its stream held
  a ~2 MB snapshot and its slot among the streams forever before (issue 24).

Receiving a request is bounded, and so is a client not reading; a long-poll is a slow
response and waits its time.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, cast

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from pm_agent_stub.http_replies import send_error
from pm_agent_stub.logs import get_logger
from pm_agent_stub.settings import StubSettings

log = get_logger("pm_agent_stub.http")

Wait = Literal["headers", "linger"]
CLOSE = (b"connection", b"close")


class SlowClientProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline while the client, not the stub, is due to send."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    write_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: Wait | None = None
        self._lingering = False
        self._write_deadline: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes buffered for the client when its last write deadline was set

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw = transport  # the socket's own; uvicorn gets the lingering wrapper
        super().connection_made(cast(asyncio.Transport, _LingeringClose(transport, self)))
        self._sync_deadline()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a body whose request was answered and closed: discarded
        super().data_received(data)

    def _close_later(self) -> bool:
        """Instead of closing now, half-close and linger if the client is still sending a body."""
        if self._lingering or self.conn.their_state is not h11.SEND_BODY:
            return False
        raw = self._raw
        if raw.is_closing() or not raw.can_write_eof():
            return False
        raw.write_eof()  # the answer, then end of stream; the client's EOF or the deadline closes
        self._lingering = True
        self._sync_deadline()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        self._arm_write(False)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm_write(True)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._arm_write(False)

    def _arm_write(self, paused: bool) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        if paused:
            self._unsent = self._raw.get_write_buffer_size()
            self._write_deadline = self.loop.call_later(self.write_timeout, self._write_expired)

    def _write_expired(self) -> None:
        """Writes still paused: go on if the client took some since, else drop the connection."""
        self._write_deadline = None
        if self._raw.is_closing():
            return
        unsent = self._raw.get_write_buffer_size()
        if unsent < self._unsent:
            self._arm_write(True)  # slow, but reading
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("slow reader closed", waiting_for="reads", client=client, unsent=unsent)
        self._raw.abort()  # close() would wait to send the buffer the client does not read

    def handle_events(self) -> None:
        super().handle_events()
        self._sync_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync_deadline()

    def _wanted(self) -> Wait | None:
        """What the connection is waiting for from the client, if anything."""
        if self.transport is None or self.transport.is_closing():
            return None
        if self.conn.their_state is h11.IDLE:
            return "headers"
        if self.conn.their_state is h11.SEND_BODY and self.conn.our_state in (
            h11.DONE,
            h11.MUST_CLOSE,
            h11.CLOSED,
        ):
            return "linger"  # answered already (401, 413, 503); the rest of the body is discarded
        return None  # the body is the app's to bound (BodyDeadline), or the stub is answering

    def _sync_deadline(self) -> None:
        self._arm(self._wanted())

    def _arm(self, waiting_for: Wait | None) -> None:
        # The same wait keeps its first deadline: re-arming on every byte is what let a
        # client dribbling one byte at a time stay forever.
        if waiting_for == self._waiting_for:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = waiting_for
        if waiting_for is not None:
            delay = self.header_timeout if waiting_for == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(delay, self._expire, waiting_for)

    def _expire(self, waiting_for: Wait) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        partial = bool(self.conn.trailing_data[0])
        if waiting_for == "headers" and partial:
            message = (
                f"request headers not complete within {self.header_timeout:g} s "
                "(PM_HTTP_HEADER_TIMEOUT); send the whole request at once"
            )
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
        if waiting_for == "linger" or partial:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.info("slow client closed", waiting_for=waiting_for, client=client)
        self._lingering = True  # out of time: close now, lingering no more
        self.transport.close()


class _LingeringClose:
    """The connection's transport as uvicorn sees it: `close()` lingers while a body arrives."""

    def __init__(self, transport: asyncio.Transport, protocol: SlowClientProtocol) -> None:
        self.wrapped = transport
        self._protocol = protocol

    def close(self) -> None:
        if not self._protocol._close_later():
            self.wrapped.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def slow_client_protocol(
    header_timeout: float, body_timeout: float, write_timeout: float = 30.0
) -> type[SlowClientProtocol]:
    """The protocol class uvicorn builds per connection, with these deadlines."""

    class Configured(SlowClientProtocol):
        pass

    Configured.header_timeout = header_timeout
    Configured.body_timeout = body_timeout
    Configured.write_timeout = write_timeout
    return Configured


class BodyDeadline:
    """Read the request body under a deadline, a size cap and a cap on slow bodies; then replay it."""

    def __init__(self, app: ASGIApp, *, timeout: float, max_bytes: int, max_in_flight: int) -> None:
        self.app = app
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # bodies being received in more than one piece right now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return  # refused, or the client left
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return None
        chunks: list[bytes] = []
        size = 0
        holding_slot = False
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    await send_error(
                        send,
                        408,
                        -32600,
                        f"request body not complete within {self.timeout:g} s (PM_HTTP_BODY_TIMEOUT); "
                        "send the whole body at once",
                        headers=(CLOSE,),
                    )
                    log.info("slow body refused", received=size, declared=declared)
                    return None
                if message["type"] != "http.request":
                    return None  # the client disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await self._too_large(send)
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
                if not holding_slot:
                    if self.in_flight >= self.max_in_flight:
                        await send_error(
                            send,
                            503,
                            -32000,
                            f"busy: {self.in_flight} request bodies are still arriving "
                            "(PM_HTTP_MAX_BODIES_IN_FLIGHT); retry shortly",
                            headers=((b"retry-after", b"1"),),
                        )
                        return None
                    self.in_flight += 1
                    holding_slot = True
        finally:
            if holding_slot:
                self.in_flight -= 1

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, -32600, f"request body larger than {self.max_bytes} bytes")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def uvicorn_limits(settings: StubSettings) -> dict[str, Any]:
    """uvicorn.run options that bound what clients can hold (see the module docstring)."""
    return {
        "http": slow_client_protocol(
            settings.http_header_timeout, settings.http_body_timeout, settings.http_write_timeout
        ),
        "limit_concurrency": settings.http_max_connections,
        "timeout_keep_alive": 5,
    }
