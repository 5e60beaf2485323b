"""The kinds of project whose tests must run in their own environment, written into a folder.

Each project's tests check where they run, so a pass means the environment was the
project's: a package the fleet does not have imports, the fleet's pytest plugins do not
(pytest-asyncio, pytest-timeout, hypothesis), nothing of the worker's ``sys.path`` or
``PYTHONPATH`` is there. Used by the local suite (real stub and worker processes) and the
Compose one (the real images).

- ``own-venv``: a project with its own ``.venv`` (tabulate installed in it, nothing else declared);
- ``extra``: a src-layout pyproject project; its test extra needs ``six`` and its PEP 735
  group ``test`` needs ``tabulate`` (neither is the fleet's);
- ``reqs``: a ``requirements.txt`` project pinning ``tabulate==0.9.0``;
- ``strict``: ``filterwarnings = error`` in its pytest.ini, which the fleet's pytest-asyncio
  warning turned into an INTERNALERROR when tests ran with the fleet's own Python;
- ``bad-package`` / ``bad-version``: requirements that do not exist on PyPI (blockers).
"""

from __future__ import annotations

import subprocess
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

#: A package name nobody has published (checked: PyPI answers 404 for it).
MISSING_PACKAGE = "pm-agent-fleet-no-such-package-h25"
FLEET_PLUGINS = ("pytest_asyncio", "pytest_timeout", "hypothesis")

ISOLATION_TEST = f"""
import importlib.util
import os
import sys


def test_nothing_of_the_fleet_leaks_in():
    assert "PYTHONPATH" not in os.environ
    leaked = [name for name in {FLEET_PLUGINS!r} if importlib.util.find_spec(name) is not None]
    assert leaked == [], f"the fleet's packages are importable: {{leaked}}"
    assert sys.prefix != sys.base_prefix, "runs in a virtual environment"
    assert os.environ["VIRTUAL_ENV"] == sys.prefix
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def own_venv_project(root: Path) -> None:
    """Tests that must run in the project's own ``.venv`` (made by :func:`make_venv`)."""
    write(
        root,
        {
            "pytest.ini": "[pytest]\ntestpaths = tests\n",
            "tests/test_own.py": """
                import sys
                from pathlib import Path

                import tabulate


                def test_runs_in_the_projects_own_venv():
                    assert Path(sys.prefix) == Path(__file__).resolve().parents[1] / ".venv"
                    assert tabulate.tabulate([[1, 2]]).strip()
                """,
            "tests/test_isolation.py": ISOLATION_TEST,
        },
    )


def make_venv(root: Path, uv: str, python: str | None = None) -> None:
    """``root/.venv`` with pytest and tabulate, made the way a user's uv makes one."""
    venv = root / ".venv"
    subprocess.run(
        [uv, "venv", "--quiet", *([f"--python={python}"] if python else []), str(venv)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", f"--python={venv / 'bin' / 'python'}", "pytest", "tabulate"],
        check=True,
        capture_output=True,
        timeout=600,
    )


def extra_project(root: Path) -> None:
    """A src-layout package: its test extra needs six, its dependency group ``test`` tabulate."""
    write(
        root,
        {
            "pyproject.toml": """
                [project]
                name = "greet"
                version = "0.1.0"
                requires-python = ">=3.9"
                dependencies = []

                [project.optional-dependencies]
                test = ["six>=1.16"]
                docs = ["this-is-never-installed-h25"]

                [dependency-groups]
                test = ["tabulate"]

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"
                """,
            "src/greet/__init__.py": 'def hello(name):\n    return f"hello {name}"\n',
            "tests/test_greet.py": """
                import six
                import tabulate

                from greet import hello


                def test_hello():
                    assert hello("you") == "hello you"


                def test_the_extra_and_the_group_are_installed():
                    assert six.PY3
                    assert tabulate.tabulate([["a"]])
                """,
            "tests/test_isolation.py": ISOLATION_TEST,
        },
    )


def requirements_project(root: Path) -> None:
    write(
        root,
        {
            "requirements.txt": "tabulate==0.9.0\n",
            "table.py": "import tabulate\n\n\ndef show(rows):\n    return tabulate.tabulate(rows)\n",
            "test_table.py": """
                import tabulate

                from table import show


                def test_the_pinned_version():
                    assert tabulate.__version__ == "0.9.0"


                def test_show():
                    assert "1" in show([[1]])
                """,
            "test_isolation.py": ISOLATION_TEST,
        },
    )


def strict_project(root: Path) -> None:
    """``filterwarnings = error``: any warning at startup, a plugin's included, is an error."""
    write(
        root,
        {
            "pytest.ini": "[pytest]\nfilterwarnings =\n    error\n",
            "test_strict.py": "def test_ok():\n    assert 1 + 1 == 2\n",
        },
    )


def failing_install_project(root: Path, requirement: str) -> None:
    write(root, {"requirements.txt": requirement + "\n", "test_x.py": "def test_x():\n    pass\n"})


def make_projects(base: Path) -> None:
    """Every kind of project under ``base`` (``own-venv``'s ``.venv`` is the caller's: :func:`make_venv`
    here, or made inside a container for the Compose suite)."""
    own_venv_project(base / "own-venv")
    extra_project(base / "extra")
    requirements_project(base / "reqs")
    strict_project(base / "strict")
    failing_install_project(base / "bad-package", MISSING_PACKAGE)
    failing_install_project(base / "bad-version", "six==0.0.999")


def tasks(prefix: str, ids: str, skill: str = "testing") -> list[dict[str, Any]]:
    """The tasks for :func:`make_projects` (paths under ``prefix``, ids ``<ids>-<kind>``), in the
    order a worker takes them."""

    def task(task_id: str, path: str, priority: str = "medium", **payload: Any) -> dict[str, Any]:
        return {
            "id": f"{ids}-{task_id}",
            "name": f"tests of {path}",
            "priority": priority,
            "required_skills": [skill],
            "payload": {"path": f"{prefix}/{path}", "timeout_seconds": 600, **payload},
        }

    cached = task("extra-again", "extra", "low")
    cached["dependencies"] = [f"{ids}-extra"]  # after the first build: this one reuses it
    return [
        task("own-venv", "own-venv", "urgent"),
        task("extra", "extra", "high"),
        task("reqs", "reqs", "high"),
        task("strict", "strict", "high"),
        task("bad-package", "bad-package"),
        task("bad-version", "bad-version"),
        cached,
    ]


def pypi_unreachable() -> str | None:
    """Why PyPI cannot be used from here (for a printed skip), or None."""
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pytest/", timeout=15) as reply:
            reply.read(100)
    except (urllib.error.URLError, OSError) as exc:
        return f"PyPI is not reachable from this machine ({exc}): the environments are built from it"
    return None
