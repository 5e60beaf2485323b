"""`run(MyWorker)`: the process entry point every worker's `__main__` calls."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from pm_worker import health, secrecy
from pm_worker.errors import SettingsError
from pm_worker.logs import configure_logging
from pm_worker.settings import load_settings
from pm_worker.worker import Worker


async def _serve(worker: Worker) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    try:
        return await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(worker_cls: type[Worker], argv: list[str] | None = None) -> None:
    """Parse `--check`, read settings (one clear line and exit 2 if bad), run the loop, exit."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {worker_cls.__module__.split('.')[0]}",
        description=f"{worker_cls.name}: a PM Agent worker ({worker_cls.role}).",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 0 if this worker's loop is alive (HEALTHCHECK)"
    )
    args = parser.parse_args(argv)
    # Before anything else: the token may sit in this process's initial environment, which
    # /proc/<pid>/environ shows to every process of our user (see pm_worker.secrecy).
    undumpable = secrecy.make_undumpable()
    try:
        settings = load_settings()
        agent_id = settings.resolve_agent_id(settings.agent_role or worker_cls.role)
    except SettingsError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        sys.exit(2)
    token_in_env = settings.pm_agent_token_file is None and settings.token() is not None
    secrecy.forget_token_env()  # read once; no child inherits it
    if args.check:
        ok, reason = health.check(settings.health_dir, agent_id)
        print(("healthy: " if ok else "unhealthy: ") + reason)
        sys.exit(0 if ok else 1)
    configure_logging(settings.log_format, settings.log_level, secrets=[settings.token()])
    if token_in_env and not undumpable:
        structlog.get_logger("pm_worker.runner").warning(
            "could not make this process non-dumpable: its children may read the token from "
            "/proc/<pid>/environ; prefer PM_AGENT_TOKEN_FILE"
        )
    settings.workspace.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(_serve(worker_cls(settings))))
