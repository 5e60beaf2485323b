"""Making a project's environment with uv, and keeping it between runs.

An environment is built once per *key*: the hash of the install plan, the project's folder
(an editable install points at it), the bytes of every metadata file it reads
(pyproject.toml, uv.lock, requirements files and what they include) and the interpreter
(path and version). It lives in ``<cache>/envs/<name>-<hash>/`` and is
reused while the key holds; a changed dependency gives a new key, hence a new environment,
and environments not used for ``TESTING_ENV_MAX_AGE_DAYS`` are removed. uv's own cache (the
downloaded wheels) is ``<cache>/uv``, on the same file system, so installing is hard-linking.

Two workers sharing the cache (``--scale testing-worker=3`` on one volume) build a key once:
the builder holds an ``flock`` on ``<key>.lock``, the others wait for it and then reuse what
it built. A build that dies half-way leaves no marker file, so the next one starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from pm_worker.clip import clip
from testing_worker.project_env import InstallPlan, MetadataError, read_metadata
from testing_worker.runner import CommandNotFound, RunResult, run_command
from testing_worker.runtime import isolated_environment
from testing_worker.settings import TestingSettings
from testing_worker.uv_errors import headline, summary

log = structlog.get_logger("testing_worker.envbuild")

#: Bumped when what is in an environment or how it is keyed changes: old ones are then unused.
FORMAT = 1
MARKER = "pm-testing-env.json"
LOCK_POLL_SECONDS = 0.5
SHOWN_ERROR = 1500

Progress = Callable[[str], Awaitable[None]]


class InstallFailed(Exception):
    """The environment could not be made; the message is the blocker's text."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str


@dataclass(frozen=True)
class BuiltEnv:
    path: Path
    python: Path
    version: str
    cached: bool
    seconds: float
    key: str


def uv_binary() -> str:
    """The uv that came with the worker (the `uv` package puts its binary next to the worker's Python)."""
    from uv import find_uv_bin

    try:
        return find_uv_bin()
    except FileNotFoundError:
        found = shutil.which("uv")
        if found is None:
            raise InstallFailed(
                "uv is not installed with the testing worker, so it cannot make the project's environment: "
                "reinstall the worker (uv is one of its dependencies) or set payload.environment: worker"
            ) from None
        return found


def uv_environment(settings: TestingSettings) -> dict[str, str]:
    """uv's variables: isolated like the tests', its cache and interpreters under the worker's cache."""
    env = isolated_environment()
    cache = settings.own_cache
    env.setdefault("UV_CACHE_DIR", str(cache / "uv"))
    env.setdefault("UV_PYTHON_INSTALL_DIR", str(cache / "python"))
    env["NO_COLOR"] = "1"  # plain `error:` / `cause:` lines, which the blocker quotes
    env["UV_NO_PROGRESS"] = "1"
    return env


def cache_key(plan: InstallPlan, python: Interpreter) -> str:
    """``<folder name>-<20 hex>``: readable in the cache, unique to what decides the environment."""
    files = {}
    for path in plan.files:
        try:
            files[str(path.relative_to(plan.root)) if plan.root in path.parents else str(path)] = (
                hashlib.sha256(read_metadata(path)).hexdigest()
            )
        except MetadataError:  # a missing include: uv will say so; the key just records it
            files[str(path)] = "missing"
    material = {
        "format": FORMAT,
        "root": str(plan.root),  # an editable install points at this folder
        "python": [python.path, python.version],
        "machine": [platform.system(), platform.machine()],
        "sync": list(plan.sync_args) if plan.sync_args is not None else None,
        "pip": list(plan.pip_args),
        "files": files,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", plan.root.name).strip("._")[:40] or "project"
    return f"{name}-{digest}"


class EnvironmentBuilder:
    """Finds the interpreter, builds or reuses the environment, and turns uv's failures into text."""

    def __init__(
        self,
        settings: TestingSettings,
        plan: InstallPlan,
        where: str,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.where = where  # the task's path, as messages name it
        self.on_line = on_line
        self.envs = settings.own_cache / "envs"

    async def find_python(self, root: Path, request: str | None, deadline: float) -> Interpreter:
        """The interpreter uv picks in ``root``: ``request``, else the project's ``.python-version`` or
        ``requires-python``, else the first one found; never a virtual environment's."""
        args = ["python", "find", "--system", *([request] if request else [])]
        path = _last(await self._uv(args, root, deadline, what="find a Python interpreter"))
        try:
            proc = await asyncio.create_subprocess_exec(
                path,
                "-I",
                "-c",
                "import platform; print(platform.python_version())",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise InstallFailed(
                f"could not install the test environment: the interpreter {path} cannot be run ({exc.strerror or exc})"
            ) from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), max(1.0, deadline - time.monotonic()))
        finally:
            if proc.returncode is None:  # timed out or cancelled
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise InstallFailed(
                f"could not install the test environment: the interpreter {path} exited with code {proc.returncode}: "
                f"{clip(out.decode(errors='replace'), 300)}"
            )
        return Interpreter(path, out.decode().strip())

    async def ensure(self, request: str | None, progress: Progress) -> BuiltEnv:
        """The plan's environment: reused if built before, else built now (one builder per key)."""
        plan, where = self.plan, self.where
        started = time.monotonic()
        deadline = started + self.settings.install_timeout_seconds
        python = await self.find_python(plan.root, request, deadline)
        key = cache_key(plan, python)
        env_dir = self.envs / key
        self.envs.mkdir(parents=True, exist_ok=True)
        bound = log.bind(key=key, project=where, python=python.version, sources=plan.describe())
        async with self._locked(env_dir, deadline, progress):
            if _ready(env_dir, key):
                os.utime(env_dir / MARKER)  # last use, for pruning
                if plan.local_paths:
                    await self._pip(
                        env_dir, ["--reinstall", "--no-deps", *plan.local_paths], plan.root, deadline
                    )
                bound.info("test_environment_reused", seconds=round(time.monotonic() - started, 3))
                return BuiltEnv(
                    env_dir, env_dir / "bin" / "python", python.version, True, time.monotonic() - started, key
                )
            await progress(
                f"Building the test environment of {where} with uv: {plan.describe()} (Python {python.version})"
            )
            shutil.rmtree(env_dir, ignore_errors=True)  # what a build that died half-way left
            if plan.sync_args is not None:
                sync_env = {"UV_PROJECT_ENVIRONMENT": str(env_dir)}
                await self._uv(
                    ["sync", f"--python={python.path}", *plan.sync_args],
                    plan.root,
                    deadline,
                    extra=sync_env,
                    what="install",
                )
            else:
                await self._uv(
                    ["venv", f"--python={python.path}", str(env_dir)], plan.root, deadline, what="install"
                )
            if plan.pip_args:
                await self._pip(env_dir, list(plan.pip_args), plan.root, deadline)
            seconds = time.monotonic() - started
            _write_marker(env_dir, key, plan, python, seconds)
        bound.info("test_environment_built", seconds=round(seconds, 3), path=str(env_dir))
        await asyncio.to_thread(self.prune, keep=key)
        return BuiltEnv(env_dir, env_dir / "bin" / "python", python.version, False, seconds, key)

    def prune(self, keep: str) -> list[str]:
        """Remove environments unused for ``TESTING_ENV_MAX_AGE_DAYS`` (none another worker is building)."""
        removed = []
        cutoff = time.time() - self.settings.env_max_age_days * 86400
        for marker in self.envs.glob(f"*/{MARKER}"):
            env_dir = marker.parent
            try:
                if env_dir.name == keep or marker.stat().st_mtime > cutoff:
                    continue
            except OSError:
                continue
            lock = os.open(env_dir.with_name(env_dir.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(lock)
                continue  # in use
            try:
                marker.unlink(missing_ok=True)
                shutil.rmtree(env_dir, ignore_errors=True)
                removed.append(env_dir.name)
            finally:
                os.close(lock)
        if removed:
            log.info("test_environments_pruned", removed=removed, max_age_days=self.settings.env_max_age_days)
        return removed

    # -- pieces ----------------------------------------------------------------------

    async def _pip(self, env_dir: Path, args: Sequence[str], cwd: Path, deadline: float) -> None:
        await self._uv(
            ["pip", "install", f"--python={env_dir / 'bin' / 'python'}", *args], cwd, deadline, what="install"
        )

    async def _uv(
        self,
        args: Sequence[str],
        cwd: Path,
        deadline: float,
        *,
        what: str,
        extra: dict[str, str] | None = None,
    ) -> str:
        """Run uv; its output, or :class:`InstallFailed` saying what it could not do and why."""
        env = uv_environment(self.settings) | (extra or {})
        left = deadline - time.monotonic()
        limit = self.settings.install_timeout_seconds
        if left <= 0:
            raise InstallFailed(
                self._failure(f"it took over {limit:g} s (TESTING_INSTALL_TIMEOUT_SECONDS)", "")
            )
        try:
            result = await run_command([uv_binary(), *args], cwd, timeout=left, env=env, on_line=self.on_line)
        except CommandNotFound as exc:
            raise InstallFailed(f"cannot run uv to make the test environment: {exc}") from exc
        output = "\n".join(result.tail)
        if result.timed_out:
            raise InstallFailed(
                self._failure(
                    f"it took over {limit:g} s (TESTING_INSTALL_TIMEOUT_SECONDS) and was stopped", output
                )
            )
        if result.returncode != 0:
            if what == "find a Python interpreter":
                raise InstallFailed(_no_python(args, cwd, result))
            raise InstallFailed(
                self._failure(headline(result.tail) or f"uv exited with code {result.returncode}", output)
            )
        return output

    def _failure(self, reason: str, output: str) -> str:
        said = summary(output.splitlines())
        text = (
            f"could not install the test environment of {self.where} from {self.plan.describe()} with uv: {reason}"
            + (f"; uv said: {said}" if said and said != reason else "")
        )
        return clip(text, SHOWN_ERROR + 500, keep="both")

    @contextlib.asynccontextmanager
    async def _locked(self, env_dir: Path, deadline: float, progress: Progress) -> Any:
        """Hold ``<key>.lock``; while another worker builds that key, wait (saying so once)."""
        fd = os.open(env_dir.with_name(env_dir.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            said = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise InstallFailed(
                            f"another worker has been building the same test environment ({env_dir.name}) for over "
                            f"{self.settings.install_timeout_seconds:g} s; rerun the task once it is done"
                        ) from None
                    if not said:
                        said = True
                        await progress(
                            f"Waiting for another worker building the same test environment ({env_dir.name})"
                        )
                    await asyncio.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # releases the lock


def _ready(env_dir: Path, key: str) -> bool:
    """Built to the end (its marker is written last) and its interpreter still there."""
    try:
        marker = json.loads((env_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    python = env_dir / "bin" / "python"
    return (
        isinstance(marker, dict)
        and marker.get("key") == key
        and python.exists()
        and os.access(python, os.X_OK)
    )


def _write_marker(env_dir: Path, key: str, plan: InstallPlan, python: Interpreter, seconds: float) -> None:
    data = {
        "key": key,
        "format": FORMAT,
        "project": str(plan.root),
        "sources": plan.describe(),
        "python": {"path": python.path, "version": python.version},
        "build_seconds": round(seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = env_dir / (MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, env_dir / MARKER)


def _last(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("warning:")]
    if not lines:
        raise InstallFailed("uv found a Python interpreter but printed nothing for it")
    return lines[-1]


def _no_python(args: Sequence[str], cwd: Path, result: RunResult) -> str:
    request = args[3] if len(args) > 3 and not args[3].startswith("-") else None
    asked = (
        f"Python {request!r} (payload.python)"
        if request
        else "the Python the project asks for (.python-version / requires-python)"
    )
    said = summary(list(result.tail)) or f"uv exited with code {result.returncode}"
    return clip(
        f"could not install the test environment: no interpreter for {asked} on this machine; uv said: {said}. "
        'Set payload.python to an installed one (a version such as "3.12", or a path)',
        SHOWN_ERROR + 500,
    )
