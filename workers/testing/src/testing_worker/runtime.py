"""The environment a test command runs in, and how the command and its variables are made for it.

Three kinds (docs/workers.md, "Which environment"):

- ``project``: a virtual environment of the project's own (its ``.venv``) or one built from
  its metadata. ``python`` and ``pytest`` in the command are that environment's, its ``bin``
  comes first on ``PATH`` and ``VIRTUAL_ENV`` names it; nothing of the worker's own leaks in:
  no ``PYTHONPATH``/``PYTHONHOME``, the worker's virtual environment off ``PATH`` (so neither its
  interpreter nor its pytest plugins are found).
- ``tool``: ``tox`` and ``nox``, which make their own environments: run by ``uv tool run`` (the
  tool's latest release, isolated, cached), as ``pipx run tox`` would, with the same isolation.
- ``worker``: the worker's own interpreter and packages, the way it was before environments
  were the project's (``environment: worker``); kept for fleets that want it.
"""

from __future__ import annotations

import itertools
import os
import shlex
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from pm_worker import TaskBlocked
from testing_worker.payload import PRIVATE_ENV

#: Variables of the worker's own interpreter that would reach into the project's (or name the
#: worker's environment as the active one).
PYTHON_LEAKS = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONEXECUTABLE",
    "PYTHONSTARTUP",
    "__PYVENV_LAUNCHER__",
    "VIRTUAL_ENV",
    "VIRTUAL_ENV_PROMPT",
    "UV_PROJECT_ENVIRONMENT",
)
TOOLS = ("tox", "nox")


@dataclass(frozen=True)
class TestEnvironment:
    """Where a command runs: ``python`` for ``python``/``pytest`` in it, ``bin_dir`` first on PATH."""

    __test__ = False  # not a pytest test class, whatever its name says

    kind: str  # "project" | "tool" | "worker"
    python: str
    description: str
    bin_dir: Path | None = None
    details: dict[str, Any] | None = None
    tool_prefix: tuple[str, ...] = ()  # `uv tool run [--python X]` for tox/nox
    own_variables: dict[str, str] | None = None  # set before the task's `env` (uv's cache for a tool)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with ``python``/``pytest`` meaning this environment's interpreter."""
        if self.kind == "tool":
            return [*self.tool_prefix, *argv]
        return map_python(list(argv), self.python)

    def variables(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The command's environment variables: the worker's minus its secrets, ``extra`` last."""
        if self.kind == "worker":
            env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        else:
            env = isolated_environment()
            if self.bin_dir is not None:
                env["VIRTUAL_ENV"] = str(self.bin_dir.parent)
                env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # no bytecode files written into the workspace
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.own_variables or {})
        env.update(extra or {})
        return env

    def summary(self) -> dict[str, Any]:
        """What the ``test_report`` artifact says about the environment."""
        return {
            "kind": self.kind,
            "python": self.python,
            "description": self.description,
            **(self.details or {}),
        }


def worker_environment() -> TestEnvironment:
    return TestEnvironment(
        "worker",
        sys.executable,
        f"the worker's own environment (Python {sys.version.split()[0]}, payload.environment: worker)",
    )


def split_command(command: str) -> list[str]:
    """The command as arguments, split like a shell would (but no shell runs it)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise TaskBlocked(
            f"payload.command {command!r} cannot be split into arguments: {exc}", severity="medium"
        ) from exc
    if not argv:
        raise TaskBlocked("payload.command is empty", severity="medium")
    return argv


def map_python(argv: list[str], python: str) -> list[str]:
    """``python``/``python3`` become ``python``; a bare ``pytest`` becomes ``python -m pytest`` (no PATH needed)."""
    if argv[0] in ("python", "python3"):
        argv[0] = python
    elif argv[0] in ("pytest", "py.test"):
        argv[:1] = [python, "-m", "pytest"]
    return argv


def is_tool(argv: Sequence[str]) -> bool:
    """``tox ...`` / ``nox ...``: a command that makes its own environments."""
    return argv[0] in TOOLS


def wants_pytest(argv: Sequence[str]) -> bool:
    """``... -m pytest ...`` or a ``pytest`` executable (before or after the command is mapped)."""
    if PurePath(argv[0]).name in ("pytest", "py.test"):
        return True
    return any(a == "-m" and b in ("pytest", "py.test") for a, b in itertools.pairwise(argv))


def worker_bin_dirs() -> set[str]:
    """The worker's own virtual environment's ``bin``, if it runs in one (never a system folder)."""
    if sys.prefix == sys.base_prefix:
        return set()
    found = {sysconfig.get_path("scripts"), str(Path(sys.prefix) / "bin")}
    return {os.path.normpath(p) for p in found if p}


def isolated_environment() -> dict[str, str]:
    """The worker's variables without its secrets, its interpreter's settings, or its venv on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV and k not in PYTHON_LEAKS}
    own = worker_bin_dirs()
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and os.path.normpath(p) not in own]
    env["PATH"] = os.pathsep.join(path)
    return env
