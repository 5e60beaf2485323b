"""The LLM worker: a `pm_worker.Worker` whose craft is an agent loop over a model with tools.

Registration, leases, heartbeats, shutdown and reporting are the base class's; this
adds a start-up check of the model endpoint and `execute` = `AgentLoop.run`.
"""

from __future__ import annotations

import logging
import sys

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from llm_worker.agent import AgentLoop
from llm_worker.backends import EndpointUnreachable, ModelBackend, StartupError, make_backend
from llm_worker.settings import LLMSettings, load_llm_settings
from pm_worker import Assignment, SettingsError, TaskContext, Worker, WorkerSettings, run

log = structlog.get_logger("llm_worker")


class LLMWorker(Worker):
    """Hands each task to a model (Anthropic Messages or OpenAI-compatible) with workspace tools."""

    role = "llm"
    name = "LLM Worker"
    skills = ("python", "documentation", "code-review")

    def __init__(
        self,
        settings: WorkerSettings | None = None,
        llm_settings: LLMSettings | None = None,
        backend: ModelBackend | None = None,
    ) -> None:
        super().__init__(settings)
        self.llm = llm_settings or load_llm_settings()
        self.backend = backend or make_backend(self.llm)

    async def preflight(self) -> None:
        """Raise `StartupError` unless the model endpoint answers; waits LLM_STARTUP_WAIT_SECONDS for it."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(self.llm.llm_startup_wait_seconds),
            wait=wait_fixed(1.0),
            retry=retry_if_exception_type(EndpointUnreachable),
            reraise=True,
        ):
            with attempt:
                await self.backend.check()
        listed = getattr(self.backend, "listed_models", None)
        if listed is not None:
            models = await listed()
            if models and self.backend.model not in models:
                log.warning(
                    "model_not_listed",
                    model=self.backend.model,
                    listed=models[:20],
                )

    async def run(self) -> int:
        logging.getLogger("anthropic").setLevel(logging.WARNING)
        try:
            try:
                await self.preflight()
            except StartupError as exc:
                log.error(
                    "startup_failed", error=str(exc), provider=self.backend.provider, model=self.backend.model
                )
                return 1
            log.info(
                "model_endpoint_ready",
                provider=self.backend.provider,
                model=self.backend.model,
                endpoint=self.backend.endpoint,
                max_steps=self.llm.llm_max_steps,
                max_tokens_per_task=self.llm.llm_max_tokens_per_task,
                max_transcript_bytes=self.llm.llm_max_transcript_bytes,
                max_tool_calls_per_turn=self.llm.llm_max_tool_calls_per_turn,
                tool_timeout_seconds=self.llm.llm_tool_timeout_seconds,
            )
            return await super().run()
        finally:
            await self.backend.aclose()

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        # A file tool still running once the worker is stopping gets half the grace, so a stuck
        # one is released as a failed attempt before pm_worker's grace runs out.
        allowance = max(1.0, self.settings.shutdown_grace_seconds / 2)
        return await AgentLoop(
            task, ctx, self.backend, self.llm, self.identity, stop_allowance=allowance
        ).run()


def main(argv: list[str] | None = None) -> None:
    """`python -m llm_worker`: LLM settings first (one line and exit 2 if bad), then `pm_worker.run`."""
    args = sys.argv[1:] if argv is None else argv
    if not {"--check", "-h", "--help"} & set(args):
        try:
            load_llm_settings()
        except SettingsError as exc:
            print(f"python -m llm_worker: {exc}", file=sys.stderr)
            sys.exit(2)
    run(LLMWorker, argv)
