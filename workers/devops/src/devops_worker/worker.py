"""`DevOpsWorker`: build an image from the workspace, smoke-test it, log it as an artifact."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
import time
from pathlib import Path

import docker

from devops_worker import base_image, engine
from devops_worker.engine import (
    BuildFailed,
    BuildState,
    EngineUnreachable,
    ImageInfo,
    SmokeFailed,
    SmokeResult,
    TagTaken,
)
from devops_worker.payload import BuildPayload
from pm_worker import (
    Assignment,
    NotTaskHolder,
    PMError,
    TaskAlreadyComplete,
    TaskBlocked,
    TaskContext,
    Worker,
)
from pm_worker.clip import clip
from pm_worker.clip import shown as shown_value
from pm_worker.errors import TransportError

# progress bands of one task: connect 0-5, build 5-65, smoke 70-95, artifact 95-100
BUILD_START, BUILD_END, SMOKE_START = 5.0, 65.0, 70.0


class DevOpsWorker(Worker):
    """Builds and smoke-tests Docker images through the engine (`docker.from_env()`)."""

    role = "devops"
    name = "DevOps Worker"
    skills = ("docker", "ci/cd", "deployment", "monitoring")
    payload_model = BuildPayload

    #: build output is reported at most this often (seconds), or after this many lines
    progress_interval: float = 2.0
    progress_lines: int = 40

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        spec: BuildPayload = ctx.payload
        tag = spec.image_tag(task.task_id)
        context_dir, dockerfile = self._locate(ctx, spec)
        await ctx.progress(1, f"connecting to the Docker engine at {engine.engine_address()}")
        try:
            client = await asyncio.to_thread(engine.connect)
        except EngineUnreachable as exc:
            raise TaskBlocked(str(exc), severity="critical") from None
        try:
            image, build_seconds, reused = await self._image(
                task, ctx, client, spec, tag, context_dir, dockerfile
            )
            smoke = await self._smoke(task, ctx, client, spec, tag, image) if spec.smoke_command else None
        except EngineUnreachable as exc:
            raise TaskBlocked(str(exc), severity="critical") from None
        except (BuildFailed, SmokeFailed, TagTaken) as exc:
            raise TaskBlocked(str(exc), severity="high") from None
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)

        smoke_output = engine.tail(smoke.output) if smoke else None
        await ctx.artifact(
            "docker_image",
            f"image {tag} built from {ctx.relative(context_dir)}/{dockerfile}"
            + (f", smoke test `{clip(shlex.join(spec.smoke_command or []), 300)}` passed" if smoke else ""),
            location=tag,
            data={
                "image_id": image.image_id,
                "size": image.size,
                "smoke_output": smoke_output,
                "tag": tag,
                "smoke_command": spec.smoke_command,
                "exit_code": smoke.exit_code if smoke else None,
                "build_seconds": round(build_seconds, 2),
                "reused": reused,
            },
        )
        built = f"reused the image {reused}" if reused else f"built in {build_seconds:.1f}s"
        message = f"{tag} ({image.image_id[:19]}, {image.size / 1e6:.1f} MB): {built}"
        if smoke:
            expect = f", output contains {shown_value(spec.expect_output, 300)}" if spec.expect_output else ""
            message += (
                f"; smoke test `{clip(shlex.join(spec.smoke_command or []), 300)}` passed (exit 0{expect})"
            )
        else:
            message += "; no smoke_command given, so no smoke test ran"
        return message

    # -- where ---------------------------------------------------------------------

    @staticmethod
    def _locate(ctx: TaskContext, spec: BuildPayload) -> tuple[Path, str]:
        """The context folder and the Dockerfile path relative to it, both inside the workspace."""
        context_dir = ctx.resolve(spec.context)
        if not context_dir.is_dir():
            raise TaskBlocked(
                f"payload.context {spec.context!r} is a file; give the build context folder",
                severity="medium",
            )
        dockerfile = ctx.resolve(str(Path(spec.context) / spec.dockerfile))
        if context_dir not in dockerfile.parents or not dockerfile.is_file():
            raise TaskBlocked(
                f"payload.dockerfile {spec.dockerfile!r} must be a file inside the build context "
                f"{spec.context!r}",
                severity="medium",
            )
        return context_dir, str(dockerfile.relative_to(context_dir))

    # -- build ---------------------------------------------------------------------

    async def _image(
        self,
        task: Assignment,
        ctx: TaskContext,
        client: docker.DockerClient,
        spec: BuildPayload,
        tag: str,
        context_dir: Path,
        dockerfile: str,
    ) -> tuple[ImageInfo, float, str | None]:
        """The image to smoke-test: (info, build seconds, what was reused or None if built now).

        Not rebuilt when this task's checkpoint or a dependency's `docker_image` artifact names
        an image with this tag that the engine still has (unless `nocache`)."""
        checkpoint = task.checkpoint if isinstance(task.checkpoint, dict) else {}
        candidates: list[tuple[str, str, float]] = []
        saved = checkpoint.get("image_id")
        if isinstance(saved, str) and checkpoint.get("tag") == tag:
            candidates.append(
                (saved, "from this task's checkpoint", _seconds(checkpoint.get("build_seconds")))
            )
        for art in await ctx.dependency_artifacts():
            if art.artifact_type != "docker_image" or art.location != tag:
                continue
            found_data = await ctx.artifact_data(art)  # fetched if the assignment carried only metadata
            data = found_data if isinstance(found_data, dict) else {}
            built = data.get("image_id")
            if isinstance(built, str):
                candidates.append(
                    (built, f"built by task {art.task_id}", _seconds(data.get("build_seconds")))
                )
        for image_id, origin, seconds in [] if spec.nocache else candidates:
            found = await asyncio.to_thread(engine.existing_image, client, image_id, tag)
            if found is not None:
                await ctx.progress(
                    BUILD_END, f"image {image_id[:19]} {origin} still exists; skipping the build"
                )
                return found, seconds, f"{image_id[:19]} {origin}"
            await ctx.progress(BUILD_START, f"image {image_id[:19]} {origin} is gone; building again")

        await asyncio.to_thread(engine.check_tag, client, tag)
        args = spec.effective_build_args()
        names = clip(", ".join(sorted(args)), 300)
        await ctx.progress(
            BUILD_START,
            f"building {tag} from {ctx.relative(context_dir)}/{dockerfile}"
            + (f" (build args: {names})" if args else ""),
        )
        state, stop = BuildState(), threading.Event()
        progress = BuildProgress(ctx, state, tag, interval=self.progress_interval, lines=self.progress_lines)
        reporter = asyncio.create_task(progress.run(), name="build-progress")
        started = time.monotonic()
        try:
            image = await asyncio.to_thread(
                engine.build,
                client,
                context=context_dir,
                dockerfile=dockerfile,
                tag=tag,
                build_args=args,
                labels={"pm-agent-fleet.task": task.task_id, "pm-agent-fleet.agent": self.agent_id},
                pull=spec.pull,
                nocache=spec.nocache,
                timeout=spec.build_timeout_seconds,
                state=state,
                stop=stop,
            )
        except asyncio.CancelledError:
            stop.set()  # the build thread drops the connection at its next line, which ends the build
            raise
        except BuildFailed as exc:
            written = base_image.failed_base_image(state.snapshot().step_line)
            if written is None:
                raise
            have = await asyncio.to_thread(base_image.local_images, client, base_image.resolve(written, args))
            # before the build output, which may be long: the blocker's head is what people read
            head, cut, output = str(exc).partition("\n--- last build output ---")
            raise BuildFailed(f"{head}\n{base_image.hint(written, args, have)}{cut}{output}") from None
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        seconds = time.monotonic() - started
        await progress.tick(final=True)  # a build faster than the first tick still shows its last step
        ctx.log.info(
            "image built",
            tag=tag,
            image_id=image.image_id,
            size=image.size,
            seconds=round(seconds, 2),
            lines=state.lines,
        )
        await ctx.checkpoint(
            {
                "stage": "built",
                "image_id": image.image_id,
                "tag": tag,
                "size": image.size,
                "build_seconds": round(seconds, 2),
            },
            f"built {tag} ({image.image_id[:19]}) in {seconds:.1f}s",
        )
        return image, seconds, None

    # -- smoke test ----------------------------------------------------------------

    async def _smoke(
        self,
        task: Assignment,
        ctx: TaskContext,
        client: docker.DockerClient,
        spec: BuildPayload,
        tag: str,
        image: ImageInfo,
    ) -> SmokeResult:
        command = spec.smoke_command or []
        shown = clip(shlex.join(command), 300)
        await ctx.progress(SMOKE_START, f"smoke test: `{shown}` in {tag}")
        containers: list[str] = []
        try:
            result = await asyncio.to_thread(
                engine.smoke,
                client,
                image_id=image.image_id,
                command=command,
                timeout=spec.smoke_timeout_seconds,
                labels={"pm-agent-fleet.task": task.task_id, "pm-agent-fleet.smoke-test": "1"},
                on_container=containers.append,
            )
        except asyncio.CancelledError:
            # the thread is still waiting on the container: removing it ends the wait
            for cid in containers:
                with contextlib.suppress(Exception):
                    await asyncio.shield(asyncio.to_thread(engine.remove_container, client, cid))
            raise
        except engine.Cancelled:
            raise SmokeFailed(f"smoke test container of {tag} vanished while it ran") from None
        ctx.log.info(
            "smoke test finished",
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            seconds=round(result.seconds, 2),
        )
        output = engine.tail(result.output, 2000)
        if result.timed_out:
            raise SmokeFailed(
                f"smoke test `{shown}` in {tag} did not finish within "
                f"{spec.smoke_timeout_seconds:.0f}s; output so far:\n{output}"
            )
        if result.exit_code != 0:
            raise SmokeFailed(
                f"smoke test `{shown}` in {tag} failed with exit code {result.exit_code}; output:\n{output}"
            )
        if spec.expect_output is not None and spec.expect_output not in result.output:
            raise SmokeFailed(
                f"smoke test `{shown}` in {tag} exited 0 but its output does not contain "
                f"{shown_value(spec.expect_output, 300)}; output:\n{output}"
            )
        await ctx.progress(95, f"smoke test passed in {result.seconds:.1f}s")
        return result


def _seconds(value: object) -> float:
    """A build time from a checkpoint or artifact (JSON): a number, or 0.0."""
    return float(value) if isinstance(value, int | float) else 0.0


class BuildProgress:
    """Build output into progress reports. Each new ``Step N/M`` line goes out at once (that is
    what a person watching wants, and a build has few); other output at most every
    ``interval`` seconds or ``lines`` lines, the first at once so the board sees the build
    started. ``tick(final=True)`` after the build reports a step not reported yet: a build
    that finished between two ticks still shows its steps."""

    def __init__(self, ctx: TaskContext, state: BuildState, tag: str, *, interval: float, lines: int) -> None:
        self.ctx, self.state, self.tag = ctx, state, tag
        self.interval, self.lines = interval, lines
        self.reported, self.step, self.at = 0, 0, time.monotonic()

    async def run(self, period: float = 0.25) -> None:
        while True:
            await asyncio.sleep(period)
            await self.tick()

    async def tick(self, *, final: bool = False) -> None:
        snap = self.state.snapshot()
        if snap.lines == self.reported:
            return
        new_step = bool(snap.step_line) and snap.step != self.step
        throttled = (
            bool(self.reported)
            and snap.lines - self.reported < self.lines
            and time.monotonic() - self.at < self.interval
        )
        if (final or throttled) and not new_step:
            return
        if snap.steps:
            percent = BUILD_START + (BUILD_END - BUILD_START) * (snap.step - 1) / snap.steps
        else:
            percent = min(BUILD_END - 1, BUILD_START + snap.lines * 0.25)
        line = snap.step_line if new_step else snap.last_line
        try:
            await self.ctx.progress(percent, f"build {self.tag}: {line[:400]}")
        except (NotTaskHolder, TaskAlreadyComplete):
            raise
        except (PMError, TransportError) as exc:  # best effort: the lease heartbeat goes on anyway
            self.ctx.log.warning("build progress not reported", error=str(exc))
        self.reported, self.step, self.at = snap.lines, snap.step, time.monotonic()
