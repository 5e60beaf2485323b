"""Which environment a task's command runs in: the decision, from the payload and the project.

``environment`` (else ``build`` if ``python`` or ``install`` is given, else the worker's
``TESTING_DEFAULT_ENVIRONMENT``, ``auto`` unless set):

- ``auto``: the project's ``.venv``/``venv`` if it has one that runs here, else one built from its
  metadata. A venv made on the host is often unusable in a container (its interpreter's path
  does not exist there): then the worker says so in the progress log and builds one instead.
- ``build``: one built from the metadata even if the project has a venv.
- a folder (workspace-relative): that venv, which must run here, else the task is blocked.
- ``worker``: the worker's own interpreter, as before project environments.

``tox`` and ``nox`` make their own environments: with ``auto``/``build`` they run through
``uv tool run`` and nothing is built for them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from pm_worker import TaskBlocked, TaskContext
from pm_worker.clip import clip, shown
from testing_worker.envbuild import EnvironmentBuilder, InstallFailed, uv_binary, uv_environment
from testing_worker.payload import TestingPayload
from testing_worker.project_env import MetadataError, find_root, find_venv, read_plan
from testing_worker.runtime import (
    TestEnvironment,
    is_tool,
    isolated_environment,
    wants_pytest,
    worker_environment,
)
from testing_worker.settings import TestingSettings

log = structlog.get_logger("testing_worker.selection")

PROBE_SECONDS = 30.0
#: Prints the interpreter's version and whether pytest is importable, without importing it.
PROBE = "import importlib.util, platform; print(platform.python_version(), importlib.util.find_spec('pytest') is not None)"

Say = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Probe:
    version: str | None  # None: the interpreter does not run here
    has_pytest: bool
    problem: str = ""


async def select_environment(
    ctx: TaskContext,
    spec: TestingPayload,
    settings: TestingSettings,
    cwd: Path,
    argv: list[str],
    say: Say,
    on_line: Callable[[str], None] | None = None,
) -> TestEnvironment:
    """The environment for this task's command (may build one: that is the slow part)."""
    choice = spec.environment_choice or settings.default_environment
    needs_pytest = wants_pytest(argv)
    if choice == "worker":
        return worker_environment()
    if is_tool(argv) and choice in ("auto", "build"):
        if spec.install is not None:
            raise TaskBlocked(
                f"payload.install has no effect on {argv[0]}, which makes its own environments from its "
                f"own configuration: drop payload.install",
                severity="medium",
            )
        return tool_environment(spec.python, settings)
    if choice not in ("auto", "build"):
        named = ctx.resolve(choice)
        probe = await probe_venv(named)
        if probe.version is None:
            raise TaskBlocked(
                f"payload.environment {shown(choice, 200)} is not a virtual environment that runs here: "
                f"{probe.problem}; give the folder of one (holding pyvenv.cfg and bin/python), or "
                "environment: build to make one from the project's metadata",
                severity="high",
            )
        return _existing(named, probe, needs_pytest, ctx.relative(named), explicit=True)

    top = ctx.resolve(ctx.in_project(spec.path, "."))
    root = find_root(cwd, top)
    if choice == "auto" and (venv := find_venv(root)) is not None:
        probe = await probe_venv(venv)
        if probe.version is not None:
            return _existing(venv, probe, needs_pytest, ctx.relative(venv), explicit=False)
        await say(
            f"The project's {ctx.relative(venv)} does not run here ({probe.problem}); "
            "building an environment from its metadata instead"
        )
        log.info("test_environment_unusable", venv=ctx.relative(venv), problem=probe.problem)
    try:
        plan = read_plan(root, wants_pytest=needs_pytest, install=spec.install)
    except MetadataError as exc:
        raise TaskBlocked(
            f"could not install the test environment of {ctx.relative(root)}: {exc}", severity="high"
        ) from None
    builder = EnvironmentBuilder(settings, plan, ctx.relative(root), on_line)
    try:
        built = await builder.ensure(spec.python, say)
    except InstallFailed as exc:
        log.warning("test_environment_failed", project=ctx.relative(root), reason=str(exc)[:500])
        raise TaskBlocked(str(exc), severity="high") from None
    how = "cached" if built.cached else f"built in {built.seconds:.1f} s"
    return TestEnvironment(
        "project",
        str(built.python),
        f"a test environment from {plan.describe()} (Python {built.version}, {how})",
        bin_dir=built.python.parent,
        details={
            "source": "built",
            "sources": list(plan.sources),
            "version": built.version,
            "cached": built.cached,
            "seconds": round(built.seconds, 3),
            "key": built.key,
        },
    )


def tool_environment(python: str | None, settings: TestingSettings) -> TestEnvironment:
    """``uv tool run`` for tox/nox: the tool's own isolated install, from uv's cache after the first run."""
    try:
        uv = uv_binary()
    except InstallFailed as exc:
        raise TaskBlocked(str(exc), severity="high") from None
    prefix = (uv, "tool", "run", *([f"--python={python}"] if python else []))
    uv_vars = uv_environment(settings)
    return TestEnvironment(
        "tool",
        uv,
        "its own environments (the tool run with uv tool run)",
        tool_prefix=prefix,
        details={"source": "tool"},
        own_variables={k: uv_vars[k] for k in ("UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR")},
    )


async def probe_venv(venv: Path) -> Probe:
    """Does ``venv/bin/python`` run here, which version is it, and can it import pytest?"""
    python = venv / "bin" / "python"
    try:
        python.stat()  # follows the link to the interpreter
    except OSError as exc:
        target = os.readlink(python) if python.is_symlink() else None
        if target is None:
            why = (
                "it has no bin/python" if isinstance(exc, FileNotFoundError) else f"{python}: {exc.strerror}"
            )
        elif isinstance(exc, FileNotFoundError):
            why = f"its interpreter {target} does not exist here"
        else:  # e.g. a link into another user's home (/root/.pyenv/...), which this uid may not enter
            why = f"its interpreter {target} cannot be used here ({exc.strerror})"
        return Probe(None, False, f"{why} (made on another machine or in another container?)")
    env = isolated_environment() | {"VIRTUAL_ENV": str(venv)}
    try:
        proc = await asyncio.create_subprocess_exec(
            str(python),
            "-c",
            PROBE,
            cwd=venv.parent,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Probe(None, False, f"{python} cannot be run: {exc.strerror or exc}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PROBE_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Probe(None, False, f"{python} did not answer within {PROBE_SECONDS:g} s")
    text = out.decode(errors="replace").strip()
    parts = text.split()
    if proc.returncode != 0 or len(parts) != 2:
        return Probe(None, False, f"{python} exited with code {proc.returncode}: {clip(text, 300)}")
    return Probe(parts[0], parts[1] == "True")


def _existing(
    venv: Path, probe: Probe, needs_pytest: bool, shown_as: str, *, explicit: bool
) -> TestEnvironment:
    if needs_pytest and not probe.has_pytest:
        fix = (
            ""
            if explicit
            else ", or set payload.environment: build to have the worker make one from its metadata"
        )
        raise TaskBlocked(
            f"the project's own environment {shown_as} has no pytest (its Python {probe.version} cannot import it): "
            f"install pytest into it{fix}",
            severity="high",
        )
    log.info("test_environment_found", venv=shown_as, python=probe.version)
    return TestEnvironment(
        "project",
        str(venv / "bin" / "python"),
        f"the project's own {shown_as} (Python {probe.version})",
        bin_dir=venv / "bin",
        details={"source": "venv", "venv": shown_as, "version": probe.version},
    )
