"""`serve`: the stub's server on its board file, over HTTP (uvicorn) or stdio, until stopped.

A project file given at start (`--project`, `PM_PROJECT_FILE`) is read and loaded into the
board before serving, as `load --db` does (commands.load_here): a bad file stops the stub
with its one line and exit code 2.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pm_agent_stub.commands import EXIT_BAD_INPUT, load_here
from pm_agent_stub.logs import get_logger
from pm_agent_stub.process import lift_descriptor_limit, tune_gc
from pm_agent_stub.project_file import ProjectFileError, load_project_file
from pm_agent_stub.settings import StubSettings

if TYPE_CHECKING:
    from pm_agent_stub.server import PMAgentServer

log = get_logger("pm_agent_stub.serve")


def serve(settings: StubSettings, transport: str) -> int:
    """Serve until stopped (SIGTERM, Ctrl-C); the exit code."""
    from pm_agent_stub.server import build_server

    descriptors = lift_descriptor_limit()
    server = build_server(settings)
    try:
        if settings.project_file is not None and _load_at_start(server, settings.project_file) != 0:
            return EXIT_BAD_INPUT
        if transport == "stdio":
            asyncio.run(_serve_stdio(server))
            return 0
        import uvicorn

        from pm_agent_stub.http_app import build_http_app
        from pm_agent_stub.http_limits import uvicorn_limits

        log.info("descriptor_limit", soft=descriptors)
        app = build_http_app(server)
        tune_gc()
        uvicorn.run(
            app,
            **uvicorn_limits(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            # uvloop where installed (a dependency off Windows): ~20 % less CPU per request.
            loop="auto",
            # A listen backlog that takes a whole crowd (re)connecting at once (every waiting
            # agent holds a connection: see PM_HTTP_MAX_CONNECTIONS for the cap).
            backlog=4096,
        )
        return 0
    finally:
        server.close()


def _load_at_start(server: PMAgentServer, path: Path) -> int:
    try:
        spec = load_project_file(path)
    except ProjectFileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    return load_here(server, spec, str(path))


async def _serve_stdio(server: PMAgentServer) -> None:
    async with server.background():
        log.info("serving", transport="stdio", db=str(server.stub_settings.db))
        await server.run_stdio_async()
