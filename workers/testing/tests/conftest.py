"""Fixtures for the testing worker suite: a fixture project with passing, failing and
hanging tests, and JUnit reports pytest wrote for it (`pm` and `stub` come from workers/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The fixture project holds failing and hanging tests on purpose: only the worker runs them.
collect_ignore = ["fixtures"]


@pytest.fixture(scope="session", autouse=True)
def env_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of project environments for the session (workers started by the tests inherit
    it): the first test that needs an environment builds it, from PyPI, the others reuse it;
    nothing is written to the developer's own ~/.cache."""
    cache = tmp_path_factory.mktemp("testing-envs")
    before = os.environ.get("TESTING_ENV_CACHE")
    os.environ["TESTING_ENV_CACHE"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("TESTING_ENV_CACHE", None)
    else:
        os.environ["TESTING_ENV_CACHE"] = before


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace holding a copy of the fixture project at `suite/`."""
    root = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "suite", root / "suite")
    return root


def run_pytest_for_report(project: Path, target: str, report: Path, *extra: str) -> None:
    """Run the real pytest on a fixture suite to get a real JUnit report."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", target, f"--junitxml={report}", *extra],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert report.is_file(), f"pytest wrote no report at {report}"


@pytest.fixture(scope="session")
def real_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """JUnit reports pytest itself wrote for the fixture suites (xunit1 and pytest's default xunit2)."""
    out = tmp_path_factory.mktemp("reports")
    project = out / "suite"
    shutil.copytree(FIXTURES / "suite", project)
    (project / "collect_error").mkdir()
    (project / "collect_error" / "test_import.py").write_text("import not_a_module_anywhere\n")
    reports = {
        "failing_xunit1": (out / "failing1.xml", "failing", ("-o", "junit_family=xunit1")),
        "failing_xunit2": (out / "failing2.xml", "failing", ()),
        "passing_xunit1": (out / "passing1.xml", "tests", ("-o", "junit_family=xunit1")),
        "collect_error": (out / "collect.xml", "collect_error", ("-o", "junit_family=xunit1")),
    }
    for path, target, extra in reports.values():
        run_pytest_for_report(project, target, path, *extra)
    return {name: path for name, (path, _, _) in reports.items()} | {"project": project}
