"""`OperatorLink`: the operator CLI's one way to a board, the same tool router either way.

Over HTTP it is a client like any worker (`PM_AGENT_URL` in any form workers accept, the same
bearer token, the tools of `pm_protocol.TOOLS`). With `--db FILE` it builds the stub's own
server on that file in this process (`build_server`) and talks to it with the MCP SDK's
in-memory client (`mcp.Client(server)`): the same router, the same argument checks and the
same answers as over HTTP, so every command reads and renders one way whichever it talks to.
WAL and `BEGIN IMMEDIATE` make the file safe next to a running stub. A file that does not
exist is never created by a command that only reads or changes what is there (`status`,
`show`, `rerun`, `resolve`): a typo in `--db` must not answer "0 tasks".

Every call is `pm_protocol.call`; an error answer becomes `OperatorError(code, message)`, and
a stub that cannot be reached `OperatorError("unreachable", ...)` saying where the CLI looked
and how to point it elsewhere.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from pm_agent_stub.db import BoardFileError
from pm_agent_stub.tool_results import answer_object
from pm_protocol import InvalidCall, UnexpectedAnswer, call
from pm_protocol.errors import refusal
from pm_protocol.tools import A, R, Tool

if TYPE_CHECKING:
    from pm_agent_stub.settings import StubSettings

CALL_TIMEOUT_SECONDS = 60.0


class OperatorError(Exception):
    """A refused or failed operator call: the protocol's error code (or `unreachable`,
    `board_not_found`) and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def http_client(token: str | None) -> httpx2.AsyncClient:
    """The CLI's HTTP client: the bearer token if there is one, the CLI's timeouts."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(CALL_TIMEOUT_SECONDS, connect=10.0))


def unauthorized(url: str) -> OperatorError:
    return OperatorError(
        "unauthorized",
        f"the stub at {url} refused the token: set PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE) to the stub's token",
    )


def existing_board(settings: StubSettings) -> Path:
    """The board file `settings.db`; `board_not_found` if there is none (a typo must not answer "0 tasks")."""
    path = Path(settings.db).expanduser()
    if not path.exists():
        raise OperatorError(
            "board_not_found",
            f"there is no board at {path}: give the --db of an existing board file, or leave --db out "
            "to talk to the running stub (--url / PM_AGENT_URL)",
        )
    return path


def _causes(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [c for e in exc.exceptions for c in _causes(e)]
    return [exc]


class OperatorLink:
    """Calls to one board; `async with` opens the line (lazily, on the first call otherwise)."""

    def __init__(self, source: str, *, url: str | None = None, token: str | None = None) -> None:
        self.source = source
        """The board as people should see it named: the stub's URL or the file's path."""
        self.url = url
        self._token = token
        self._settings: StubSettings | None = None
        self._stack = contextlib.AsyncExitStack()
        self._client: Client | None = None

    @classmethod
    def over_http(cls, url: str, token: str | None) -> OperatorLink:
        """The running stub at `url` (an /mcp URL)."""
        return cls(url, url=url, token=token)

    @classmethod
    def on_file(cls, settings: StubSettings, *, create: bool = False) -> OperatorLink:
        """The board file `settings.db`, served in this process (`existing_board` unless `create`)."""
        path = Path(settings.db).expanduser() if create else existing_board(settings)
        link = cls(str(path))
        link._settings = settings.model_copy(update={"db": path})
        return link

    async def __aenter__(self) -> OperatorLink:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> OperatorLink:
        if self._client is not None:
            return self
        try:
            if self._settings is not None:
                self._client = await self._stack.enter_async_context(Client(self._serve_file()))
            else:
                assert self.url is not None
                http = await self._stack.enter_async_context(http_client(self._token))
                transport = streamable_http_client(self.url, http_client=http)
                self._client = await self._stack.enter_async_context(Client(transport))
        except BaseException as exc:
            await self.close()
            raise self._unreachable(exc) from None
        return self

    def _serve_file(self) -> Any:
        """The stub's server on the board file, closed (its board thread stopped) with the link."""
        from pm_agent_stub.server import build_server

        assert self._settings is not None
        server = build_server(self._settings)
        self._stack.callback(server.close)
        return server

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def call(self, tool: Tool[A, R], args: A | dict[str, Any]) -> R:
        """Call `tool` with `args` (checked by its argument model first); its result, or OperatorError."""
        try:
            return await call(self._send, tool, args)
        except InvalidCall as exc:
            raise OperatorError("invalid_argument", f"not sent to the stub: {exc.message}") from None
        except UnexpectedAnswer as exc:
            raise OperatorError(
                "unreachable",
                f"{self.source} answered {tool.name} in an unknown shape ({exc.message}): "
                "is it a PM Agent stub of this version?",
            ) from None

    async def _send(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]:
        await self.open()
        assert self._client is not None
        try:
            answer = await self._client.call_tool(tool, arguments)
        except Exception as exc:  # the stub went away mid-call, or refused us
            raise self._unreachable(exc) from None
        obj = answer_object(answer)
        if obj is None:
            raise OperatorError(
                "unreachable", f"{self.source} answered {tool} with no JSON object: is it a PM Agent stub?"
            )
        if answer.is_error:
            refused = refusal(tool, obj)
            raise OperatorError(refused.code, refused.message)
        return obj

    def _unreachable(self, exc: BaseException) -> BaseException:
        causes = _causes(exc)
        for cause in causes:
            if isinstance(cause, (KeyboardInterrupt, SystemExit, OperatorError, BoardFileError)):
                return cause  # a damaged or foreign board file says so itself, in one line (db.py)
        reason = "; ".join(f"{type(c).__name__}: {c}" for c in causes)
        if self.url is None:
            return OperatorError(
                "unreachable", f"the board file {self.source} could not be served ({reason})"
            )
        for cause in causes:
            text = str(cause.error.message) if isinstance(cause, MCPError) else str(cause)
            status = cause.response.status_code if isinstance(cause, httpx2.HTTPStatusError) else None
            if status == 401 or "unauthorized" in text.lower():
                return unauthorized(self.url)
        return OperatorError(
            "unreachable",
            f"no stub answers at {self.url} ({reason}). Start one (`make up`, or `make demo PROJECT_DIR=...`), "
            "or point the CLI at yours with --url or PM_AGENT_URL (or at a board file with --db)",
        )
