"""What a project's own test environment is made of: the virtual environment it already has,
or what to install, read from its metadata. Files are read here; nothing runs.

The names, and why (docs/workers.md, "Which environment"):

- An existing environment is ``.venv`` or ``venv`` holding a ``pyvenv.cfg``: ``.venv`` is
  what uv, Poetry (in-project), PDM, VS Code and PyCharm make and what the Python packaging
  guide uses; ``venv`` is ``python -m venv venv``. ``.env`` and ``env`` are left alone: ``.env``
  is far more often a dotenv file (Compose reads one), and either would be a guess.
- The test dependencies are every extra, dependency group (PEP 735) and requirements file
  named ``test``, ``tests`` or ``testing``; if the project has none so named, the ones named
  ``dev``, ``develop`` or ``development`` (which is where many projects keep them). Plus the
  project's own dependencies: the project installed editable if it can be built (so a cached
  environment always runs the current code), its ``requirements.txt``, and ``pytest`` when the
  command is pytest (a pin of the project's own wins: it is one more requirement, not a version).
- A project with a ``uv.lock`` is synced from it (``uv sync --locked``), as its own CI does.
- A folder with none of this (the demo: a ``pytest.ini`` and tests) gets an environment with
  pytest only: it declares nothing else, and anything its tests import beyond the standard
  library then fails as it would in CI, by name.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_NAMES = (".venv", "venv")
TEST_NAMES = frozenset({"test", "tests", "testing"})
DEV_NAMES = frozenset({"dev", "develop", "development"})
#: Largest metadata file read (a pyproject.toml or requirements file is a few KB).
MAX_METADATA_BYTES = 1 << 20
#: Requirement files followed through `-r` / `-c` before the rest is ignored.
MAX_REQUIREMENT_FILES = 50
_REQUIREMENTS = re.compile(
    r"^(?:requirements|(?P<pre>[a-z]+)[-_.]requirements)(?:[-_.](?P<post>[a-z]+))?\.txt$", re.IGNORECASE
)
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=\S))(\S+)")
_LOCAL_PATH = re.compile(r"^\s*(?:\.{1,2}(?:/\S*)?|/\S+|file:\S+)\s*(?:#.*)?$")
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "uv.lock")


class MetadataError(Exception):
    """A metadata file the environment depends on cannot be read (message names the file)."""


@dataclass(frozen=True)
class InstallPlan:
    """How to make a project's environment: run in ``root`` (which holds the metadata)."""

    root: Path
    sources: tuple[str, ...]
    """What was read, for people: ``pyproject.toml [test]``, ``group tests``, ``requirements-dev.txt``."""
    pip_args: tuple[str, ...]
    """``uv pip install`` arguments; empty: nothing to install (a bare environment)."""
    sync_args: tuple[str, ...] | None = None
    """``uv sync`` arguments, first, for a project with a ``uv.lock``."""
    files: tuple[Path, ...] = ()
    """Every file whose bytes decide the environment (their hashes key the cache)."""
    local_paths: tuple[str, ...] = field(default=())
    """Folders the requirement files install non-editably (``.``): reinstalled on every reuse,
    so a cached environment never tests yesterday's copy of the code."""

    def describe(self) -> str:
        """``pyproject.toml [test] + group tests + pytest`` (what people read in progress and logs)."""
        parts = list(self.sources)
        pytest = "pytest" in self.pip_args and not any("payload.install" in s for s in parts)
        if not parts:
            return (
                "no dependency metadata: pytest only"
                if pytest
                else "no dependency metadata: a bare environment"
            )
        return " + ".join([*parts, "pytest"] if pytest else parts)


def normalize(name: str) -> str:
    """PEP 503/685 name normalization (`Test_Utils` == `test-utils`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_kind(name: str) -> str | None:
    """``test`` for an extra or group named test/tests/testing, ``dev`` for dev/develop/development."""
    word = normalize(name)
    return "test" if word in TEST_NAMES else "dev" if word in DEV_NAMES else None


def pick_test_dependencies(
    extras: list[str], groups: list[str], files: dict[str, list[str]]
) -> tuple[list[str], ...]:
    """(extras, groups, requirement files) that hold the tests' dependencies: the test-named ones
    of all three, or, when none is test-named, the dev-named ones."""
    for kind in ("test", "dev"):
        chosen = (
            [e for e in extras if name_kind(e) == kind],
            [g for g in groups if name_kind(g) == kind],
            files[kind],
        )
        if any(chosen):
            return chosen
    return [], [], []


def find_root(start: Path, top: Path) -> Path:
    """The nearest folder from ``start`` up to ``top`` that has a venv or metadata; else ``start``."""
    here = start
    while True:
        if find_venv(here) is not None or _has_metadata(here):
            return here
        if here == top or top not in here.parents:
            return start
        here = here.parent


def find_venv(root: Path) -> Path | None:
    """The project's existing virtual environment (``.venv``, then ``venv``), if it has one."""
    for name in VENV_NAMES:
        candidate = root / name
        if (candidate / "pyvenv.cfg").is_file():
            return candidate
    return None


def _has_metadata(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _PROJECT_FILES) or any(
        requirement_files(folder).values()
    )


def requirement_files(root: Path) -> dict[str, list[str]]:
    """Requirement files of ``root`` by kind: ``base`` (requirements.txt), ``test``, ``dev``.

    Top level: ``requirements.txt``, ``requirements-test.txt``, ``test-requirements.txt``,
    ``requirements_dev.txt``, ...; in ``requirements/``: ``base.txt``, ``test.txt``, ``dev.txt``, ...
    (``requirements-docs.txt`` and the like are not test dependencies and are left out).
    """
    found: dict[str, list[str]] = {"base": [], "test": [], "dev": []}
    candidates = []
    try:
        candidates += [p.name for p in root.iterdir() if p.is_file()]
        sub = root / "requirements"
        if sub.is_dir():
            candidates += [f"requirements/{p.name}" for p in sub.iterdir() if p.is_file()]
    except OSError:
        return found
    for name in sorted(candidates):
        kind = _requirement_kind(name)
        if kind is not None:
            found[kind].append(name)
    return found


def _requirement_kind(name: str) -> str | None:
    if name.startswith("requirements/"):
        stem, _, ext = name.removeprefix("requirements/").rpartition(".")
        if ext != "txt":
            return None
        word = normalize(stem)
        if word in ("base", "main", "requirements"):
            return "base"
    else:
        match = _REQUIREMENTS.match(name)
        if match is None:
            return None
        word = normalize(match.group("pre") or match.group("post") or "")
        if not word:
            return "base"
    if word in TEST_NAMES:
        return "test"
    return "dev" if word in DEV_NAMES else None


def read_plan(root: Path, *, wants_pytest: bool, install: tuple[str, ...] | None = None) -> InstallPlan:
    """The plan for ``root``'s environment (``install`` replaces what the metadata says)."""
    pyproject = _read_toml(root / "pyproject.toml")
    project_files = [root / n for n in _PROJECT_FILES if (root / n).is_file()]
    pytest_arg = ("pytest",) if wants_pytest else ()
    if install is not None:
        named = [install[i + 1] for i, a in enumerate(install[:-1]) if a in ("-r", "--requirement", "-c")]
        files = _with_includes(root, [root / n for n in named])
        return InstallPlan(
            root,
            (f"payload.install ({' '.join(install)[:200]})",),
            (*install, *pytest_arg),
            files=tuple(project_files + files),
            local_paths=_local_paths(files),
        )

    table = pyproject.get("project")
    project: dict[str, Any] = table if isinstance(table, dict) else {}
    extras_table = project.get("optional-dependencies")
    extras = list(extras_table) if isinstance(extras_table, dict) else _setup_cfg_extras(root)
    groups_table = pyproject.get("dependency-groups")
    groups = list(groups_table) if isinstance(groups_table, dict) else []
    reqs = requirement_files(root)
    chosen_extras, chosen_groups, chosen_reqs = pick_test_dependencies(extras, groups, reqs)
    req_names = reqs["base"] + chosen_reqs
    req_paths = _with_includes(root, [root / n for n in req_names])
    sources: list[str] = []
    installable = isinstance(pyproject.get("build-system"), dict) or any(
        (root / n).is_file() for n in ("setup.py", "setup.cfg")
    )
    meta = "pyproject.toml" if (root / "pyproject.toml").is_file() else "setup.py/setup.cfg"
    label = f"{meta} [{','.join(chosen_extras)}]" if chosen_extras else meta
    pip: list[str] = []
    sync: tuple[str, ...] | None = None
    if (root / "uv.lock").is_file() and project:
        sync = (
            "--locked",
            *[a for e in chosen_extras for a in ("--extra", e)],
            *[a for g in chosen_groups for a in ("--group", g)],
        )
        sources.append(f"uv.lock ({label}{''.join(f' + group {g}' for g in chosen_groups)})")
    else:
        if installable:
            pip += ["-e", f".[{','.join(chosen_extras)}]" if chosen_extras else "."]
            sources.append(label)
        elif project:
            pip += ["-r", "pyproject.toml", *[a for e in chosen_extras for a in ("--extra", e)]]
            sources.append(label)
        for group in chosen_groups:
            pip += ["--group", group]
            sources.append(f"group {group}")
    for name in req_names:
        pip += ["-r", name]
        sources.append(name)
    return InstallPlan(
        root,
        tuple(sources),
        (*pip, *pytest_arg),
        sync_args=sync,
        files=tuple(dict.fromkeys(project_files + req_paths)),
        local_paths=_local_paths(req_paths),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = read_metadata(path)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MetadataError(f"{path.name} is not valid TOML: {exc}") from None


def read_metadata(path: Path) -> bytes:
    """A metadata file's bytes, at most :data:`MAX_METADATA_BYTES`."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise MetadataError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(f"{path.name} is over {MAX_METADATA_BYTES:,} bytes; not read")
    return data


def _setup_cfg_extras(root: Path) -> list[str]:
    path = root / "setup.cfg"
    if not path.is_file():
        return []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_metadata(path).decode("utf-8", errors="replace"))
    except configparser.Error:
        return []  # setuptools will say what is wrong with it when the project is built
    return list(parser["options.extras_require"]) if parser.has_section("options.extras_require") else []


def _with_includes(root: Path, files: list[Path]) -> list[Path]:
    """``files`` and every file they name with ``-r`` / ``-c``, depth first, at most a bounded number."""
    seen: dict[Path, None] = {}
    todo = list(files)
    while todo and len(seen) < MAX_REQUIREMENT_FILES:
        path = todo.pop(0)
        if path in seen:
            continue
        seen[path] = None
        try:
            text = read_metadata(path).decode("utf-8", errors="replace")
        except MetadataError:
            continue  # uv names a missing include itself, with the line that asks for it
        for line in text.splitlines():
            match = _INCLUDE.match(line)
            if match:
                todo.append(path.parent / match.group(1))
    return list(seen)


def _local_paths(files: list[Path]) -> tuple[str, ...]:
    """Local folders the requirement files install non-editably (``.``, ``./pkg``, ``file:...``)."""
    found = []
    for path in files:
        try:
            text = read_metadata(path).decode("utf-8", errors="replace")
        except MetadataError:
            continue
        for line in text.splitlines():
            if _LOCAL_PATH.match(line):
                target = line.split("#", 1)[0].strip().removeprefix("file:")
                found.append(str((path.parent / target).resolve()) if not target.startswith("/") else target)
    return tuple(dict.fromkeys(found))
