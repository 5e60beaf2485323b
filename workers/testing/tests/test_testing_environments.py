"""Tests in the project's own environment: the real worker process, the real stub, real uv, PyPI.

One worker run takes every task of :mod:`env_projects`: a project with its own ``.venv``,
a pyproject project whose test extra and dependency group need packages the fleet does not
have, a ``requirements.txt`` project, the ``filterwarnings = error`` project that broke
under the fleet's own Python (it passes in its own environment; ``environment: worker``
shows the old INTERNALERROR), two installs that cannot succeed (blockers naming the package,
with the stub's suggestion), and a second run of the pyproject project that reuses the
cached environment. Another run has an index nobody answers on: "no network".
Skipped, saying why, if PyPI is not reachable.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import env_projects
import pytest
from env_projects import MISSING_PACKAGE

from pm_agent_stub.testing import StubProcess, free_port, load_tasks, task_context
from tests.integration.workerproc import run_worker_to_end

WORKER_TIMEOUT = 1200.0
SKILLS = "testing,pytest,unit-testing,integration-testing"


@pytest.fixture(scope="module")
def uv() -> str:
    from uv import find_uv_bin

    reason = env_projects.pypi_unreachable()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return find_uv_bin()


def other_interpreter(uv: str) -> tuple[str, str] | None:
    """(path, version) of an installed CPython >= 3.10 other than the one uv picks by default."""
    found = subprocess.run([uv, "python", "find", "--system"], capture_output=True, text=True, check=False)
    default = subprocess.run(
        [found.stdout.strip(), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    candidates = sorted(Path.home().glob(".pyenv/versions/3.1[0-9]*/bin/python3")) + [
        Path(p) for p in ("/usr/bin/python3", "/usr/local/bin/python3")
    ]
    for path in candidates:
        probe = subprocess.run(
            [
                str(path),
                "-c",
                "import platform, sys; print(platform.python_version(), sys.version_info >= (3, 10))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        parts = probe.stdout.split()
        if probe.returncode == 0 and parts[1:] == ["True"] and parts[0] != default:
            return str(path), parts[0]
    return None


@pytest.fixture(scope="module")
def board(stub: StubProcess, uv: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workspace = tmp_path_factory.mktemp("envs-it") / "workspace"
    env_projects.make_projects(workspace / "kinds")
    env_projects.make_venv(workspace / "kinds" / "own-venv", uv)
    skill = f"envs-{uuid.uuid4().hex[:8]}"
    tasks = env_projects.tasks("kinds", skill, skill)
    worker_mode = {
        "id": f"{skill}-strict-as-before",
        "name": "the strict project with the worker's own Python",
        "priority": "high",
        "required_skills": [skill],
        "payload": {"path": "kinds/strict", "environment": "worker"},
    }
    interpreter = other_interpreter(uv)
    if interpreter is not None:
        env_projects.extra_project(workspace / "other-python")
        tasks.append(
            {
                "id": f"{skill}-other-python",
                "name": "the extra project on another interpreter",
                "required_skills": [skill],
                "payload": {"path": "other-python", "python": interpreter[0], "timeout_seconds": 600},
            }
        )
    env_projects.write(
        workspace / "tox-project",
        {
            "tox.ini": "[tox]\nenv_list = py\n\n[testenv]\nskip_install = true\ndeps = pytest\ncommands = pytest -q\n",
            "test_tox.py": "def test_in_tox():\n    import sys\n    assert '.tox' in sys.prefix\n",
        },
    )
    tox = {
        "id": f"{skill}-tox",
        "name": "tox",
        "priority": "low",
        "required_skills": [skill],
        "payload": {"path": "tox-project", "command": "tox -e py", "timeout_seconds": 600},
    }
    load_tasks(stub.db, *tasks, worker_mode, tox)
    code, log = run_worker_to_end(
        "testing_worker",
        stub,
        workspace,
        agent_id=f"envs-{skill}",
        skills=f"{SKILLS},{skill}",
        max_tasks=len(tasks) + 2,
        timeout=WORKER_TIMEOUT,
    )
    assert code == 0, log
    contexts = {
        t["id"].removeprefix(f"{skill}-"): task_context(stub, t["id"]) for t in [*tasks, worker_mode, tox]
    }
    return {"workspace": workspace, "contexts": contexts, "log": log, "interpreter": interpreter}


def environment_of(context: dict[str, Any]) -> dict[str, Any]:
    [artifact] = context["artifacts"]
    env: dict[str, Any] = artifact["data"]["environment"]
    return env


def done(board: dict[str, Any], name: str) -> dict[str, Any]:
    context: dict[str, Any] = board["contexts"][name]
    assert context["task"]["status"] == "done", json.dumps(context["blockers"], indent=1)
    return context


def test_a_project_with_its_own_venv_runs_in_it(board: dict[str, Any]) -> None:
    context = done(board, "own-venv")
    env = environment_of(context)
    assert (env["source"], env["venv"]) == ("venv", "kinds/own-venv/.venv")
    assert context["artifacts"][0]["data"]["passed"] == 2
    running = [e["message"] for e in context["progress_log"] if e["message"].startswith("Running")]
    assert running[0].endswith(f"with the project's own kinds/own-venv/.venv (Python {env['version']})")


def test_a_pyproject_projects_test_extra_and_group_are_installed(board: dict[str, Any]) -> None:
    context = done(board, "extra")
    env = environment_of(context)
    assert env["source"] == "built"
    assert env["sources"] == ["pyproject.toml [test]", "group test"]  # not the docs extra
    assert env["cached"] is False
    assert context["artifacts"][0]["data"]["passed"] == 3


def test_a_requirements_project_gets_its_pins(board: dict[str, Any]) -> None:
    context = done(board, "reqs")
    assert environment_of(context)["sources"] == ["requirements.txt"]
    assert context["artifacts"][0]["data"]["passed"] == 3


def test_the_second_run_reuses_the_cached_environment(board: dict[str, Any]) -> None:
    first, again = environment_of(done(board, "extra")), environment_of(done(board, "extra-again"))
    assert again["cached"] is True
    assert again["key"] == first["key"]
    print(f"\nenvironment of `extra`: first build {first['seconds']:.2f} s, cached {again['seconds']:.2f} s")


def test_filterwarnings_error_passes_in_the_projects_own_environment(board: dict[str, Any]) -> None:
    context = done(board, "strict")
    assert context["artifacts"][0]["data"]["passed"] == 1
    before = board["contexts"]["strict-as-before"]
    if importlib.util.find_spec("pytest_asyncio") is None:
        pytest.skip("the fleet's own environment has no pytest-asyncio here, so the old failure cannot show")
    # the old way, still reachable: the fleet's plugins load into the project's pytest and fail it
    assert before["task"]["status"] == "blocked"
    [blocker] = before["blockers"]
    assert "INTERNALERROR" in blocker["description"]
    assert "asyncio_default_fixture_loop_scope" in blocker["description"]


def test_a_package_that_does_not_exist_is_named_in_the_blocker(board: dict[str, Any]) -> None:
    context = board["contexts"]["bad-package"]
    assert context["task"]["status"] == "blocked"
    [blocker] = context["blockers"]
    assert blocker["description"].startswith(
        "could not install the test environment of kinds/bad-package from requirements.txt + pytest with uv: "
        f"package '{MISSING_PACKAGE}' was not found on the index; uv said: error: No solution found"
    )
    assert (
        "each package and version the blocker names exists on the index" in blocker["resolution_suggestion"]
    )
    assert context["artifacts"] == []  # no test ran


def test_a_version_that_does_not_exist_is_named_in_the_blocker(board: dict[str, Any]) -> None:
    context = board["contexts"]["bad-version"]
    [blocker] = context["blockers"]
    assert "with uv: no version six==0.0.999 exists on the index; uv said:" in blocker["description"]
    assert "exists on the index" in blocker["resolution_suggestion"]


def test_payload_python_picks_the_interpreter(board: dict[str, Any]) -> None:
    if board["interpreter"] is None:
        pytest.skip("no second CPython >= 3.10 on this machine to choose")
    env = environment_of(done(board, "other-python"))
    assert env["version"] == board["interpreter"][1]


def test_tox_makes_its_own_environments(board: dict[str, Any]) -> None:
    context = done(board, "tox")
    assert context["artifacts"] == []  # tox's own output decides (no JUnit report asked of it)
    assert (board["workspace"] / "tox-project" / ".tox" / "py").is_dir()
    messages = [e["message"] for e in context["progress_log"]]
    assert any("with its own environments (the tool run with uv tool run)" in m for m in messages)


def test_no_network_is_a_blocker_naming_the_index(stub: StubProcess, uv: str, tmp_path: Path) -> None:
    """The index does not answer (a port nobody listens on): the blocker says so, with the stub's advice."""
    workspace = tmp_path / "workspace"
    env_projects.requirements_project(workspace / "offline")
    (workspace / "offline" / "requirements.txt").write_text(
        "tabulate==0.8.10\n"
    )  # never cached by this suite
    skill = f"offline-{uuid.uuid4().hex[:8]}"
    load_tasks(
        stub.db,
        {"id": f"{skill}-t", "name": "offline", "required_skills": [skill], "payload": {"path": "offline"}},
    )
    index = f"http://127.0.0.1:{free_port()}/simple"
    code, log = run_worker_to_end(
        "testing_worker",
        stub,
        workspace,
        agent_id=skill,
        skills=f"{SKILLS},{skill}",
        max_tasks=1,
        timeout=300,
        UV_INDEX_URL=index,
    )
    assert code == 0, log
    context = task_context(stub, f"{skill}-t")
    [blocker] = context["blockers"]
    assert f"with uv: the index could not be reached ({index}/" in blocker["description"]
    assert "Connection refused" in blocker["description"]
    assert "could not reach the package index" in blocker["resolution_suggestion"]
    assert any(e["event"] == "test_environment_failed" for e in _events(log))


def test_log_lines_are_snake_case_events_with_fields(board: dict[str, Any]) -> None:
    events = _events(board["log"])
    names = {e["event"] for e in events}
    assert {"test_environment_built", "test_environment_reused", "test_environment_found"} <= names
    assert {"test_command_started", "test_command_finished", "test_report_read"} <= names
    built = next(e for e in events if e["event"] == "test_environment_built")
    assert {"key", "project", "python", "sources", "seconds", "path"} <= set(built)


def _events(log: str) -> list[dict[str, Any]]:
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def test_no_fleet_package_is_in_a_built_environment(board: dict[str, Any]) -> None:
    """The built environment's own site-packages: the project's packages and pytest, not the fleet's."""
    python = Path(environment_of(done(board, "extra"))["python"])
    [site] = python.parents[1].glob("lib/python*/site-packages")
    dists = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"six", "tabulate", "pytest", "greet"} <= dists
    assert not dists & {"pytest_asyncio", "pytest_timeout", "hypothesis", "pm_worker", "structlog", "uv"}
    assert shutil.which("python", path=str(python.parent)) == str(python)
