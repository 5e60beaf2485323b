"""The HTTP face: `/healthz` (no token, but the Host allow-list), the MCP endpoint at exactly `/mcp`,
and the dashboard with `/metrics` (dashboard/routes.py; its own auth rules).

The MCP sub-app is built once and its session manager runs in *our* lifespan (a mounted
app's own lifespan never runs; building it twice swaps the manager and every request 500s).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.types import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pm_agent_stub.dashboard import Dashboard
from pm_agent_stub.http_limits import BodyDeadline
from pm_agent_stub.http_replies import send_error
from pm_agent_stub.logs import get_logger
from pm_agent_stub.server import PMAgentServer

log = get_logger("pm_agent_stub.http")

MAX_REQUEST_BODY_BYTES = 1024 * 1024  # a 256 KiB checkpoint, JSON-escaped, fits with room to spare


class BearerTokenMiddleware:
    """401 on `/mcp` unless `Authorization: Bearer <token>`; constant-time compare, token never logged."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/mcp"):
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                given = value
                break
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        log.warning("unauthorized", path=scope.get("path"), had_header=bool(given))
        # `data` is the contract's error object.
        message = (
            "unauthorized: missing or wrong bearer token; send 'Authorization: Bearer <PM_AGENT_TOKEN>'."
        )
        await send_error(
            send,
            401,
            -32001,
            message,
            data={"success": False, "error": "unauthorized", "message": message},
            headers=((b"www-authenticate", b'Bearer realm="pm-agent"'),),
        )


class NoStandaloneStream:
    """`405` for `GET /mcp`: this stateless JSON-response server sends nothing unasked.

    Left to the SDK, every GET that accepts `text/event-stream` (curl's `*/*` does) opens an
    SSE stream that is never closed: one held connection and transport per request, pinged
    forever. The MCP spec lets a server without such a stream answer 405; clients only open
    it when they have a session id, which stateless mode never hands out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            message = "Method Not Allowed: no SSE stream; POST JSON-RPC to /mcp"
            await send_error(send, 405, -32600, message, headers=((b"allow", b"POST"),))
            return
        await self.app(scope, receive, send)


MCP_PATHS = ("/mcp", "/mcp/")  # the SDK redirects the second to the first
PROTOCOL_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)


class McpPathOnly:
    """404 for any path but `/mcp` that no other route took (the MCP app is mounted at `/`).

    Without it every unknown GET fell to `NoStandaloneStream` and got 405 "no SSE stream",
    which tells a client the path exists (issue 24 item 8, from the conformance suite).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in MCP_PATHS:
            message = (
                f"Not Found: {str(scope.get('path'))[:200]!r}. This stub serves MCP at POST /mcp, the "
                "dashboard at /, /metrics and /healthz"
            )
            await send_error(send, 404, -32601, message)
            return
        await self.app(scope, receive, send)


class ProtocolVersionCheck:
    """400 naming the versions this stub speaks when `MCP-Protocol-Version` names another.

    The spec has a server answer an unsupported version with 400; the SDK sends every
    version it does not know to its 2026 per-request-envelope path, whose refusal talks
    about `params._meta` envelope keys the client never heard of (issue 24 item 8).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope.get("headers", []):
                if key != b"mcp-protocol-version":
                    continue
                version = value.decode("latin-1")
                if version not in PROTOCOL_VERSIONS:
                    message = (
                        f"Unsupported MCP-Protocol-Version {version[:100]!r}: this stub speaks "
                        f"{', '.join(PROTOCOL_VERSIONS)}. Send one of them (the version the initialize "
                        "handshake agreed on), or no header before the handshake"
                    )
                    data: dict[str, object] = {
                        "supported": list(PROTOCOL_VERSIONS),
                        "requested": version[:100],
                    }
                    await send_error(send, 400, UNSUPPORTED_PROTOCOL_VERSION, message, data=data)
                    return
                break
        await self.app(scope, receive, send)


def transport_security(server: PMAgentServer) -> TransportSecuritySettings:
    hosts = server.stub_settings.allowed_hosts
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=not server.stub_settings.host_check_disabled,
        allowed_hosts=hosts,
        allowed_origins=origins,
    )


def build_http_app(server: PMAgentServer) -> Starlette:
    mcp_app = server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        transport_security=transport_security(server),
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
    )
    session_manager = server.session_manager
    dashboard = Dashboard(server)

    host_check = TransportSecurityMiddleware(transport_security(server))

    async def healthz(request: Request) -> Response:
        # The same Host/Origin check as /mcp (421/403): a DNS-rebound page reads nothing here either.
        refused = await host_check.validate_request(request)
        if refused is not None:
            return refused
        # Never waits on the database: answers while a big `load` or another process holds it.
        return JSONResponse(
            {
                "status": "ok",
                "uptime_seconds": round(time.time() - server.started_at, 3),
                "db": server.stub_settings.db.name,  # which board; its path is the server's business
                **server.health(),
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with session_manager.run(), server.background(), dashboard.running():
            log.info(
                "serving",
                transport="http",
                db=str(server.stub_settings.db),
                auth=server.stub_settings.token is not None,
            )
            yield

    token = server.stub_settings.token.get_secret_value() if server.stub_settings.token is not None else None
    settings = server.stub_settings
    bounded = BodyDeadline(
        mcp_app,
        timeout=settings.http_body_timeout,
        max_bytes=MAX_REQUEST_BODY_BYTES,
        max_in_flight=settings.http_max_bodies_in_flight,
    )
    guarded: ASGIApp = ProtocolVersionCheck(NoStandaloneStream(bounded))
    inner: ASGIApp = McpPathOnly(guarded if token is None else BearerTokenMiddleware(guarded, token))

    def dashboard_body(app: ASGIApp, max_bytes: int) -> ASGIApp:
        return BodyDeadline(
            app,
            timeout=settings.http_body_timeout,
            max_bytes=max_bytes,
            max_in_flight=settings.http_max_bodies_in_flight,
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            *dashboard.routes(dashboard_body),
            Mount("/", app=inner),
        ],
        lifespan=lifespan,
    )
