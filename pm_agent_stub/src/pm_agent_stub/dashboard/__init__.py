"""The live dashboard: the board in a browser (and in a terminal, `status --watch`), served by the stub.

| module | holds |
|---|---|
| `snapshot.py` | `BoardSnapshot`: what the page and the terminal view show, from bounded indexed reads |
| `live.py` | `LiveBoard`: one snapshot per change (rate-limited) for every reader; the capped event streams |
| `auth.py` | `OperatorAuth`: bearer token or login session, Host check, same-origin rule for changes |
| `login_limit.py` | `LoginLimit`: failed logins counted per client address; over the limit, attempts take turns |
| `routes.py` | the HTTP endpoints (`/`, `/dashboard/...`, `/login`, `/metrics`) |
| `terminal.py` | the snapshot as rich tables, for `python -m pm_agent_stub status --watch` |
| `static/` | the page: HTML, plain JS (no build step, no CDN, no library), CSS |

`Dashboard(server)` wires them to one stub: it subscribes the live feed to the board's
commits (`Board.add_listener`) and `http_app.py` mounts its routes and runs its pusher in
the app's lifespan.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from prometheus_client import Gauge, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from pm_agent_stub.dashboard.auth import OperatorAuth
from pm_agent_stub.dashboard.live import LiveBoard
from pm_agent_stub.dashboard.routes import DashboardRoutes
from pm_agent_stub.dashboard.snapshot import take_snapshot
from pm_agent_stub.db import data_version

if TYPE_CHECKING:
    from pm_agent_stub.server import PMAgentServer

__all__ = ["Dashboard"]


class Dashboard:
    """The dashboard and /metrics of one stub server."""

    def __init__(self, server: PMAgentServer) -> None:
        settings = server.stub_settings
        board = server.board
        token = settings.token.get_secret_value() if settings.token is not None else None
        self.auth = OperatorAuth(token, settings.allowed_hosts, host_check=not settings.host_check_disabled)
        registry = server.metrics.registry
        build_time = Histogram(
            "pm_agent_dashboard_snapshot_seconds",
            "Time to build one dashboard snapshot (pushed to open pages, or GET /dashboard/api/board).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=registry,
        )

        def snapshot_json() -> bytes:
            with build_time.time():
                return take_snapshot(board).model_dump_json().encode()

        # The board has its own thread (board_thread.py): every read of it goes there, in the
        # viewers' lane (workers' calls go first).
        self.live = LiveBoard(
            snapshot_json,
            lambda: data_version(board.conn),
            on_board=server.db.view,
            post=server.db.post,
            max_streams=settings.dashboard_max_streams,
            max_age=settings.dashboard_stream_max_seconds,
        )
        board.add_listener(self.live.on_commit)
        streams = Gauge(
            "pm_agent_dashboard_streams",
            "Dashboard pages open on this stub (event streams).",
            registry=registry,
        )
        streams.set_function(lambda: self.live.subscribers)
        self._routes = DashboardRoutes(
            self.auth,
            self.live,
            server.router,
            server.metrics,
            metrics_public=settings.metrics_public,
            on_board=server.db.view,
        )

    def routes(self, bounded: Callable[[ASGIApp, int], ASGIApp] | None = None) -> list[BaseRoute]:
        """The dashboard's routes; `bounded(app, max_bytes)` wraps each POST (see DashboardRoutes)."""
        return self._routes.routes(bounded)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the live pusher while the app serves; close every stream when it stops."""
        pusher = asyncio.create_task(self.live.run(), name="pm-agent-dashboard")
        loop = asyncio.get_running_loop()
        try:
            with close_on_terminate(lambda: loop.call_soon_threadsafe(self.live.close)):
                yield
        finally:
            self.live.close()
            pusher.cancel()
            await asyncio.gather(pusher, return_exceptions=True)


@contextmanager
def close_on_terminate(close: Callable[[], object]) -> Iterator[None]:
    """Call `close` on SIGTERM/SIGINT, then the handler that was there (uvicorn's graceful shutdown).

    uvicorn waits for open responses before it runs the lifespan's shutdown, and an event
    stream never ends by itself: without this every open page would hold a stopping stub for
    its whole `timeout_graceful_shutdown` and end in a cancellation traceback. Only the main
    thread may set signal handlers; elsewhere (an app run in a thread) nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(sig: int, frame: FrameType | None) -> None:
        close()
        before = previous[signal.Signals(sig)]
        if callable(before):
            before(sig, frame)
        else:  # nobody else listened: behave as if we had not been here
            signal.signal(sig, before if before is not None else signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)
