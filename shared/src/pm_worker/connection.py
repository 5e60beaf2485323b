"""One MCP connection to the stub, owned by its own task.

The SDK's client lives inside an `async with`, and a server that goes away mid-call
tears down that whole context (errors arrive as an ExceptionGroup in the task that
entered it). So the context is entered by a dedicated holder task; callers in other
tasks race their call against the holder's death, and a dead connection surfaces to
them as one `TransportError` instead of a hang or a crashed worker.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx2
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from pm_worker.aio import reap
from pm_worker.errors import TransportError, Unauthorized
from pm_worker.settings import WorkerSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """A tool's answer as the server sent it: the JSON object, and whether it is an error."""

    is_error: bool
    answer: dict[str, Any]


class ToolConnection(Protocol):
    """What `PMClient` needs of a connection: `Connection`, or a test double wrapping one."""

    @property
    def alive(self) -> bool: ...

    async def open(self) -> None: ...

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Reply: ...

    async def tool_names(self, timeout: float) -> list[str]: ...

    async def close(self) -> None: ...


def stdio_params(command: str) -> StdioServerParameters:
    argv = shlex.split(command)
    if not argv:
        raise ValueError("PM_STDIO_COMMAND is empty")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return StdioServerParameters(command=argv[0], args=argv[1:])


def describe(exc: BaseException) -> str:
    """A one-line reason from an exception or an ExceptionGroup of them."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _unauthorized(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_unauthorized(e) for e in exc.exceptions)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code == 401
    return isinstance(exc, MCPError) and "unauthorized" in exc.error.message.lower()


class Connection:
    """Opens an `mcp.Client` and serves `call_tool` until it dies.

    The client speaks streamable HTTP or stdio as the settings say, or, given `server`, talks
    to an MCP server object in this very process (what `pm_worker.testing` runs workers on).
    """

    def __init__(self, settings: WorkerSettings, *, server: Any = None) -> None:
        self._settings = settings
        self._server = server
        self._client: Client | None = None
        self._stop = asyncio.Event()
        self._dead = asyncio.Event()
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._http_error: str | None = None
        self._holder: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._client is not None and not self._dead.is_set()

    def _target(self) -> str | StdioServerParameters | Any:
        s = self._settings
        if s.pm_transport == "stdio":
            return stdio_params(s.pm_stdio_command)
        return s.pm_agent_url

    async def open(self) -> None:
        self._holder = asyncio.create_task(self._hold(), name="pm-connection")
        ready = asyncio.create_task(self._ready.wait())
        dead = asyncio.create_task(self._dead.wait())
        try:
            await asyncio.wait(
                {ready, dead},
                timeout=self._settings.call_timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
            dead.cancel()
        if not self.alive:
            failure = self._failure
            await self.close()
            if failure is not None and _unauthorized(failure):
                raise Unauthorized(
                    "the stub refused our token: set PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE) to the stub's token"
                )
            reason = describe(failure) if failure else "timed out connecting"
            if self._http_error:
                # The SDK hides the HTTP status behind "Server returned an error response".
                reason += f" ({self._http_error})"
            raise TransportError(f"cannot connect to {self._describe_target()}: {reason}")

    def _describe_target(self) -> str:
        s = self._settings
        if self._server is not None:
            return f"the in-process server {type(self._server).__name__}"
        return f"stdio `{s.pm_stdio_command}`" if s.pm_transport == "stdio" else s.pm_agent_url

    async def _hold(self) -> None:
        s = self._settings
        try:
            if self._server is not None:
                async with Client(self._server) as client:
                    await self._serve(client)
            elif s.pm_transport == "http":
                token = s.token()
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if s.pm_agent_host_header:
                    # e.g. Marcus, whose MCP SDK answers 421 to any Host but localhost/127.0.0.1
                    headers["Host"] = s.pm_agent_host_header
                http = httpx2.AsyncClient(  # what the SDK's transports use; redirects not followed
                    headers=headers,
                    timeout=httpx2.Timeout(s.call_timeout_seconds + s.poll_wait_seconds + 5, connect=10.0),
                )
                http.event_hooks["response"].append(self._note_http_error)
                async with http:
                    from mcp.client.streamable_http import streamable_http_client

                    transport = streamable_http_client(s.pm_agent_url, http_client=http)
                    async with Client(transport) as client:
                        await self._serve(client)
            else:
                async with Client(self._target()) as client:
                    await self._serve(client)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the link died: kept to say why, raised to no one (callers race `_dead`)
            self._failure = exc
        except BaseException as exc:  # e.g. a group holding a cancellation: kept, and raised on
            self._failure = exc
            raise
        finally:
            self._client = None
            self._dead.set()

    async def _note_http_error(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._http_error = f"HTTP {response.status_code} {response.reason_phrase}"
            if response.status_code == 421:
                self._http_error += (
                    ": the server refuses this Host header; set PM_AGENT_HOST_HEADER to one it "
                    "accepts (Marcus: localhost:<port>)"
                )

    async def _serve(self, client: Client) -> None:
        self._client = client
        self._ready.set()
        await self._stop.wait()

    async def tool_names(self, timeout: float) -> list[str]:
        """The names in the server's `tools/list` (how `PM_PROTOCOL=auto` tells the dialects apart)."""
        client = self._client
        if client is None or self._dead.is_set():
            raise TransportError("not connected")
        listed = await self._race("tools/list", client.list_tools(), timeout)
        return [tool.name for tool in listed.tools]

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Reply:
        """Call a tool and return its reply; `TransportError` if the link breaks or the reply is malformed."""
        client = self._client
        if client is None or self._dead.is_set():
            raise TransportError("not connected")
        result = await self._race(name, client.call_tool(name, arguments), timeout)
        return Reply(bool(result.is_error), parse_result(name, result))

    async def _race(self, name: str, request: Coroutine[Any, Any, T], timeout: float) -> T:
        """Await `request` against the connection's death and `timeout`; failures become `TransportError`."""
        call = asyncio.ensure_future(request)
        dead = asyncio.ensure_future(self._dead.wait())
        try:
            done, _ = await asyncio.wait({call, dead}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()  # the caller gave up (e.g. shutdown during a long-poll): abandon the request
            raise
        finally:
            dead.cancel()
        if call not in done:
            await reap(call)
            reason = describe(self._failure) if self._failure else f"no answer within {timeout:.0f}s"
            await self.close()
            raise TransportError(f"{name}: connection lost ({reason})")
        try:
            result = call.result()
        except MCPError as exc:
            if _unauthorized(exc):
                raise Unauthorized(
                    "the stub refused our token: set PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE) to the stub's token",
                    tool=name,
                ) from exc
            # A protocol-level error (not a tool error): the stub is up but unhappy, e.g. restarting.
            await self.close()
            raise TransportError(f"{name}: {exc.error.message}") from exc
        except (OSError, httpx2.HTTPError) as exc:
            await self.close()
            raise TransportError(f"{name}: {describe(exc)}") from exc
        return result

    async def close(self) -> None:
        self._stop.set()
        holder, self._holder = self._holder, None
        if holder is not None and holder is not asyncio.current_task():
            await reap(holder)


def parse_result(name: str, result: CallToolResult) -> dict[str, Any]:
    """The one JSON object the contract puts in content[0].text (and in structured_content).

    Anything else is not an answer of this protocol (a proxy's error page, another server):
    a `TransportError`, so it is retried like a broken link and never mistaken for a tool error.
    """
    if isinstance(result.structured_content, dict):
        return dict(result.structured_content)
    for block in result.content:
        if isinstance(block, TextContent):
            try:
                value = json.loads(block.text)
            except json.JSONDecodeError:
                raise TransportError(f"{name}: the reply is not JSON: {block.text[:200]!r}") from None
            if isinstance(value, dict):
                return value
            raise TransportError(f"{name}: the reply is JSON but not an object: {block.text[:200]!r}")
    raise TransportError(f"{name}: the reply holds no text content")
