"""Blocking calls to the Docker engine (the `docker` SDK); the worker runs each in a thread.

Every failure comes out as an `EngineError` subclass whose message carries the engine's
own words, so the blocker a person reads says what Docker said.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from pm_worker.clip import clip

STEP = re.compile(r"^Step (\d+)/(\d+)\s*:")
OUTPUT_LIMIT = 4000  # characters of smoke output kept for the blocker / artifact
TAIL_LINES = 25  # build log lines quoted in a build-failure blocker
LINE_LIMIT = 500  # characters of one build output line kept
ENGINE_TEXT_LIMIT = 2000  # characters of an engine error message quoted
FLEET_LABEL = "pm-agent-fleet.task"  # on every image this fleet builds


class EngineError(Exception):
    """Something the engine refused or could not do."""


class EngineUnreachable(EngineError):
    pass


class BuildFailed(EngineError):
    pass


class SmokeFailed(EngineError):
    pass


class TagTaken(EngineError):
    """The tag names an image this fleet did not build: moving it could replace anyone's image."""


class Cancelled(Exception):
    """The async side asked the blocking call to stop."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable(exc: BaseException) -> EngineUnreachable:
    text = clip(str(exc) or type(exc).__name__, ENGINE_TEXT_LIMIT)
    hint = ""
    if "permission denied" in text.lower():
        hint = (
            " (this user may not use the socket: start the container as root so its entry point"
            " joins the socket's group before it drops to uid 10001, as docker-compose.yml does"
            ' with `user: "0:0"`; or give uid 10001 the socket\'s group, e.g. `--group-add'
            " $(stat -c %g /var/run/docker.sock)`)"
        )
    return EngineUnreachable(f"Docker engine unreachable at {engine_address()}: {text}{hint}")


def connect(timeout: float = 60.0) -> docker.DockerClient:
    """`docker.from_env()` plus a ping, so an absent engine is found before any work starts."""
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    return client


@dataclass
class BuildState:
    """Shared between the build thread (writes) and the progress reporter (reads)."""

    lines: int = 0
    last_line: str = ""
    step: int = 0
    steps: int = 0
    step_line: str = ""  # the latest `Step N/M : ...` line: what a person watching a build wants
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: str) -> None:
        line = clip(line, LINE_LIMIT)
        with self.lock:
            self.lines += 1
            self.last_line = line
            self.tail.append(line)
            m = STEP.match(line)
            if m:
                self.step, self.steps = int(m.group(1)), int(m.group(2))
                self.step_line = line

    def snapshot(self) -> BuildSnapshot:
        with self.lock:
            return BuildSnapshot(self.lines, self.last_line, self.step, self.steps, self.step_line)


@dataclass(frozen=True)
class BuildSnapshot:
    lines: int
    last_line: str
    step: int
    steps: int
    step_line: str


@dataclass(frozen=True)
class ImageInfo:
    image_id: str
    size: int
    tags: tuple[str, ...]


def _lines(chunk: dict[str, Any]) -> Iterator[str]:
    if "stream" in chunk:
        for line in str(chunk["stream"]).splitlines():
            if line.strip():
                yield line.rstrip()
    elif "status" in chunk:
        text = str(chunk["status"])
        if chunk.get("id"):
            text = f"{chunk['id']}: {text}"
        if chunk.get("progress"):
            text = f"{text} {chunk['progress']}"
        yield text


def build(
    client: docker.DockerClient,
    *,
    context: Path,
    dockerfile: str,
    tag: str,
    build_args: dict[str, str],
    labels: dict[str, str],
    pull: bool,
    nocache: bool,
    timeout: float,
    state: BuildState,
    stop: threading.Event,
) -> ImageInfo:
    """Build `context` as `tag`, feeding every output line to `state`; the new image's info."""
    deadline = time.monotonic() + timeout
    image_id: str | None = None
    error: str | None = None
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=build_args,
            labels=labels,
            pull=pull,
            nocache=nocache,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=int(timeout),
        )
    except docker.errors.APIError as exc:
        raise BuildFailed(f"Docker build of {tag} refused: {engine_text(exc)}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    try:
        for chunk in stream:
            if stop.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise BuildFailed(
                    f"Docker build of {tag} timed out after {timeout:.0f}s (last output: {state.last_line!r})"
                )
            if not isinstance(chunk, dict):
                continue
            for line in _lines(chunk):
                state.add(line)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
            if "error" in chunk:
                detail = chunk.get("errorDetail") or {}
                error = clip(str(detail.get("message") or chunk["error"]).strip(), ENGINE_TEXT_LIMIT)
                state.add(f"ERROR: {error}")
    except requests.exceptions.ReadTimeout:
        raise BuildFailed(
            f"Docker build of {tag} timed out after {timeout:.0f}s with no output "
            f"(last output: {state.last_line!r})"
        ) from None
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        raise unreachable(exc) from None
    finally:
        close = getattr(stream, "close", None)
        if close is not None:  # a generator: closing it drops the connection, which stops the build
            with contextlib.suppress(Exception):
                close()
    if error is not None:
        tail = clip("\n".join(list(state.tail)[-TAIL_LINES:]), OUTPUT_LIMIT, keep="tail")
        raise BuildFailed(f"Docker build of {tag} failed: {error}\n--- last build output ---\n{tail}")
    return inspect_image(client, image_id or tag)


def inspect_image(client: docker.DockerClient, ref: str) -> ImageInfo:
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise BuildFailed(f"the build finished but the engine has no image {ref!r}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    return ImageInfo(image_id=str(image.id), size=int(image.attrs.get("Size") or 0), tags=tuple(image.tags))


def existing_image(client: docker.DockerClient, image_id: str, tag: str) -> ImageInfo | None:
    """The checkpointed image if the engine still has it (re-tagged as `tag`), else None."""
    try:
        image = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    if tag not in image.tags:
        check_tag(client, tag)
        repo, _, version = tag.rpartition(":")
        image.tag(repo, version)
    return ImageInfo(image_id=str(image.id), size=int(image.attrs.get("Size") or 0), tags=(*image.tags, tag))


@dataclass(frozen=True)
class SmokeResult:
    exit_code: int
    output: str
    timed_out: bool
    seconds: float


def smoke(
    client: docker.DockerClient,
    *,
    image_id: str,
    command: list[str],
    timeout: float,
    labels: dict[str, str],
    on_container: Callable[[str], None],
) -> SmokeResult:
    """Run `command` in a new container of `image_id`, wait (bounded), collect output, remove it.

    `on_container` gets the container id as soon as it exists, so the async side can
    force-remove it if the task is cancelled while this thread waits."""
    started = time.monotonic()
    try:
        container = client.containers.create(image_id, command=command, detach=True, labels=labels)
    except docker.errors.APIError as exc:
        raise SmokeFailed(
            f"smoke test container for {image_id[:19]} could not be created: {engine_text(exc)}"
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    on_container(str(container.id))
    try:
        timed_out = False
        try:
            container.start()
            result = container.wait(timeout=timeout)
            exit_code = int(result.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if time.monotonic() - started < timeout * 0.9:  # not our timeout: the engine went away
                raise unreachable(exc) from None
            timed_out, exit_code = True, -1
            with contextlib.suppress(Exception):
                container.kill()
        except docker.errors.NotFound:
            raise Cancelled() from None  # removed under us: the task was cancelled
        except docker.errors.APIError as exc:
            raise SmokeFailed(
                f"smoke test `{_show(command)}` could not run in {image_id[:19]}: {engine_text(exc)}"
            ) from None
        try:
            raw = container.logs(stdout=True, stderr=True)
        except docker.errors.NotFound:
            raise Cancelled() from None
        output = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return SmokeResult(exit_code, output, timed_out, time.monotonic() - started)
    finally:
        remove_container(client, str(container.id))


def remove_container(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        try:
            client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise


def check_tag(client: docker.DockerClient, tag: str) -> None:
    """Refuse to move ``tag`` off an image this fleet did not build (no :data:`FLEET_LABEL`).

    A task may name any tag; without this, ``python:3.12-slim`` (the fleet's own base image)
    or any other local image could be replaced by whatever the task's Dockerfile builds."""
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise unreachable(exc) from None
    if FLEET_LABEL not in (image.labels or {}):
        raise TagTaken(
            f"payload.tag {tag!r} already names image {str(image.id)[:19]}, which this fleet did not build "
            f"(it has no {FLEET_LABEL} label): the worker never moves such a tag. Give a tag of your own "
            "(the default is pm-fleet/<task id>:latest), or remove that tag from the engine first"
        )


def engine_text(exc: docker.errors.APIError) -> str:
    """What the engine said, cut to :data:`ENGINE_TEXT_LIMIT` characters."""
    return clip(str(exc.explanation or exc), ENGINE_TEXT_LIMIT)


def tail(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last ``limit`` characters of ``text``, saying how much was cut before them."""
    return clip(text, limit, keep="tail")


def _show(command: list[str]) -> str:
    return clip(shlex.join(command), 300)
