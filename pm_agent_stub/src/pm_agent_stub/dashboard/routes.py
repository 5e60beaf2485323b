"""The dashboard's and the metrics' HTTP endpoints (mounted by http_app.py next to `/mcp`).

| endpoint | what |
|---|---|
| `GET /`, `GET /dashboard` | the page (static HTML + plain JS; no data in it) |
| `GET /dashboard/static/<file>` | its script and style sheet (no data: open to all) |
| `GET /dashboard/api/board` | the board now, as one JSON `BoardSnapshot` (the live feed's shared one) |
| `GET /dashboard/api/stream` | `text/event-stream`: a `board` event now and after every change (503 past the cap) |
| `POST /dashboard/api/resolve` | `{"task_id", "resolution"}`: resolve_blocker, as the CLI does |
| `GET`/`POST /login`, `POST /logout` | the login form (only with `PM_AGENT_TOKEN` set) |
| `GET /metrics` | Prometheus exposition (metrics.py) |

Rules (auth.py): the operator's credentials on everything but the static files and the
login form (`/metrics` too, unless `PM_METRICS_PUBLIC=1`); an allowed Host header on all
but `/metrics` (Prometheus scrapes by address); same-origin for every POST. Every page
answer carries a strict Content-Security-Policy (scripts only from this origin, no inline
script), so even a missed escape could not run a script.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from pm_agent_stub.dashboard.auth import COOKIE_NAME, SESSION_SECONDS, OperatorAuth, Via
from pm_agent_stub.dashboard.live import LiveBoard, Subscriber
from pm_agent_stub.dashboard.login_limit import LoginLimit
from pm_agent_stub.logs import get_logger
from pm_agent_stub.metrics import BoardMetrics
from pm_agent_stub.tools import ToolRouter

T = TypeVar("T")

log = get_logger("pm_agent_stub.dashboard")

MAX_FORM_BYTES: Final = 4096
MAX_ACTION_BYTES: Final = 64 * 1024
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # "no-referrer" would make our own form posts say Origin: null
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
STATIC_TYPES: Final = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

Endpoint = Callable[[Request], Awaitable[Response]]


def _asset(name: str) -> bytes:
    return resources.files("pm_agent_stub.dashboard").joinpath("static", name).read_bytes()


def _json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": code, "message": message},
        status_code=status,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


class EventStream(StreamingResponse):
    """A page's `text/event-stream`; its place among the open streams is given back however it ends
    (the client leaving cancels the body's iterator before its own cleanup would run)."""

    def __init__(self, live: LiveBoard, sub: Subscriber) -> None:
        super().__init__(
            live.stream(sub),
            media_type="text/event-stream",
            headers={**SECURITY_HEADERS, "x-accel-buffering": "no"},
        )
        self._live = live
        self._sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._live.release(self._sub)


class DashboardRoutes:
    """The endpoints above, bound to one stub's board, tools, live feed and metrics."""

    def __init__(
        self,
        auth: OperatorAuth,
        live: LiveBoard,
        router: ToolRouter,
        metrics: BoardMetrics,
        *,
        metrics_public: bool,
        on_board: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.on_board = on_board  # where board reads run (the stub's board thread); None: right here
        self.auth = auth
        self.live = live
        self.logins = LoginLimit()
        self.router = router
        self.metrics = metrics
        self.metrics_public = metrics_public
        # The page holds no data; only whether there is a login (for its "Log out" button).
        self._page = _asset("index.html").replace(
            b'data-auth="off"', b'data-auth="on"' if auth.enabled else b'data-auth="off"'
        )
        self._login_page = _asset("login.html").decode()
        self._static = {
            name: (_asset(name), STATIC_TYPES[name[name.rindex(".") :]])
            for name in ("dashboard.js", "dashboard.css")
        }

    def routes(self, bounded: Callable[[ASGIApp, int], ASGIApp] | None = None) -> list[BaseRoute]:
        """The routes; `bounded(app, max_bytes)` wraps each POST so its body is read under the
        stub's deadline and size cap (http_limits.BodyDeadline), as `/mcp`'s is."""

        def post(path: str, endpoint: Endpoint, max_bytes: int) -> Route:
            app = request_response(endpoint)
            return Route(path, bounded(app, max_bytes) if bounded else app, methods=["POST"])

        return [
            Route("/", self._guard(self.page, api=False), methods=["GET"]),
            Route("/dashboard", self._guard(self.page, api=False), methods=["GET"]),
            Route("/dashboard/static/{name}", self.static, methods=["GET"]),
            Route("/dashboard/api/board", self._guard(self.board), methods=["GET"]),
            Route("/dashboard/api/stream", self._guard(self.stream), methods=["GET"]),
            post("/dashboard/api/resolve", self._guard(self.resolve, action=True), MAX_ACTION_BYTES),
            Route("/login", self.login_form, methods=["GET"]),
            post("/login", self.login, MAX_FORM_BYTES),
            post("/logout", self.logout, MAX_FORM_BYTES),
            Route("/metrics", self.scrape, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ the gate

    def _guard(self, endpoint: Endpoint, *, api: bool = True, action: bool = False) -> Endpoint:
        """Host check, credentials, and for actions same-origin plus a JSON body."""

        async def guarded(request: Request) -> Response:
            refused = self.auth.host_refusal(request)
            if refused is not None:
                return _json_error(421, "misdirected_request", refused)
            via = self.auth.credentials(request)
            if via is None:
                if not api:
                    return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
                return _json_error(
                    401, "unauthorized", "log in at /login, or send 'Authorization: Bearer <PM_AGENT_TOKEN>'."
                )
            if action:
                cross = self.auth.cross_site_refusal(request, via)
                if cross is not None:
                    log.warning(
                        "dashboard_cross_site_refused",
                        path=request.url.path,
                        origin=request.headers.get("origin"),
                    )
                    return _json_error(403, "cross_site", cross)
                if (
                    request.headers.get("content-type", "").split(";")[0].strip().lower()
                    != "application/json"
                ):
                    return _json_error(
                        415,
                        "invalid_argument",
                        "send the action as a JSON body (Content-Type: application/json).",
                    )
            request.state.via = via
            request.state.session = (
                self.auth.session(request.cookies.get(COOKIE_NAME)) if via == "cookie" else None
            )
            return await endpoint(request)

        return guarded

    # ------------------------------------------------------------------ the page and its data

    async def page(self, request: Request) -> Response:
        return Response(self._page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        found = self._static.get(request.path_params["name"])
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media_type = found
        return Response(
            body, media_type=media_type, headers={**SECURITY_HEADERS, "cache-control": "no-cache"}
        )

    async def _on_board(self, fn: Callable[..., T], *args: Any) -> T:
        if self.on_board is None:
            return fn(*args)
        result: T = await self.on_board(fn, *args)
        return result

    async def board(self, request: Request) -> Response:
        snapshot = await self.live.latest()
        if snapshot is None:
            return _json_error(
                500, "internal_error", "the board could not be read (the stub's log says why); retry shortly."
            )
        return Response(snapshot.json, media_type="application/json", headers=SECURITY_HEADERS)

    async def stream(self, request: Request) -> Response:
        sub = self.live.admit(request.state.session)
        if sub is None:
            log.warning(
                "dashboard_stream_refused",
                streams=self.live.subscribers,
                client=request.client.host if request.client else None,
            )
            return _json_error(
                503,
                "busy",
                f"{self.live.subscribers} dashboard streams are open on this stub, the most it serves "
                f"(PM_DASHBOARD_MAX_STREAMS={self.live.max_streams}); close a dashboard tab and retry, "
                "or raise PM_DASHBOARD_MAX_STREAMS.",
                headers={"retry-after": "5"},
            )
        return EventStream(self.live, sub)

    async def resolve(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_ACTION_BYTES:
            return _json_error(413, "invalid_argument", f"the action body is over {MAX_ACTION_BYTES} bytes.")
        try:
            arguments = json.loads(body)
        except ValueError:
            return _json_error(
                400, "invalid_argument", 'the body is not JSON; send {"task_id": ..., "resolution": ...}.'
            )
        if not isinstance(arguments, dict):
            return _json_error(
                400, "invalid_argument", 'send a JSON object {"task_id": ..., "resolution": ...}.'
            )
        answer = await self.router.call("resolve_blocker", arguments)
        result: dict[str, Any] = answer.structured_content or {}
        via: Via = request.state.via
        log.info(
            "dashboard_resolve",
            task_id=str(arguments.get("task_id"))[:200],
            ok=not answer.is_error,
            via=via,
            client=request.client.host if request.client else None,
        )
        status = 200
        if answer.is_error:
            status = {"task_not_found": 404, "invalid_argument": 400}.get(str(result.get("error")), 500)
        return JSONResponse(result, status_code=status, headers=SECURITY_HEADERS)

    # ------------------------------------------------------------------ login

    def _login_page_with(self, message: str, status: int) -> Response:
        shown = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
        body = self._login_page.replace("<!--message-->", shown)
        return Response(
            body, status_code=status, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
        )

    async def login_form(self, request: Request) -> Response:
        refused = self.auth.host_refusal(request)
        if refused is not None:
            return _json_error(421, "misdirected_request", refused)
        if self.auth.credentials(request) is not None:
            return RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        return self._login_page_with("", 200)

    async def login(self, request: Request) -> Response:
        refused = self.auth.host_refusal(request) or self.auth.cross_site_refusal(request, "cookie")
        if refused is not None:
            return _json_error(403, "cross_site", refused)
        if not self.auth.enabled:
            return RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        body = await request.body()
        given = parse_qs(body[:MAX_FORM_BYTES].decode(errors="replace")).get("token", [""])[0]
        client = request.client.host if request.client else None
        if not await self.logins.turn(client):
            log.warning("dashboard_login_refused", client=client, failures=self.logins.failures(client))
            return self._login_page_with(
                f"Too many failed logins from your address ({self.logins.failures(client)} in the last minute), "
                "and more attempts from it are already waiting their turn; wait a minute and retry.",
                429,
            )
        if not self.auth.token_matches(given):
            failures = self.logins.failed(client)
            log.warning("dashboard_login_failed", client=client, failures=failures)
            if failures > self.logins.per_minute:
                return self._login_page_with(
                    f"That is not the stub's token (PM_AGENT_TOKEN). {failures} failed logins from your "
                    f"address in the last minute: each attempt from it now waits its turn, one every "
                    f"{self.logins.spacing:g} s.",
                    429,
                )
            return self._login_page_with("That is not the stub's token (PM_AGENT_TOKEN).", 401)
        self.logins.succeeded(client)
        log.info("dashboard_login", client=client)
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE_NAME,
            self.auth.new_session(),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        refused = self.auth.host_refusal(request) or self.auth.cross_site_refusal(request, "cookie")
        if refused is not None:
            return _json_error(403, "cross_site", refused)
        session = self.auth.end_session(request.cookies.get(COOKIE_NAME))
        if session is not None:
            streams = self.live.end_session(session)
            log.info(
                "dashboard_logout", client=request.client.host if request.client else None, streams=streams
            )
        response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    # ------------------------------------------------------------------ metrics

    async def scrape(self, request: Request) -> Response:
        if not self.metrics_public and self.auth.credentials(request) is None:
            return Response(
                "unauthorized: send 'Authorization: Bearer <PM_AGENT_TOKEN>' (Prometheus: authorization.credentials_file), "
                "or set PM_METRICS_PUBLIC=1 on the stub.\n",
                status_code=401,
                media_type="text/plain; charset=utf-8",
                headers={"www-authenticate": 'Bearer realm="pm-agent"'},
            )
        body, content_type = await self._on_board(self.metrics.exposition, request.headers.get("accept"))
        return Response(body, media_type=content_type)
