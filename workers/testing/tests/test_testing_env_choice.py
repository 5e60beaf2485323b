"""Which environment a task gets, and the cache of built ones: `TestingWorker.execute` with a
real TaskContext (recording the reports), real uv and PyPI (skipped, saying why, without it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import env_projects
import pytest

from pm_worker import Assignment, SettingsError, TaskBlocked, TaskContext, WorkerSettings
from pm_worker.payload import parse_payload
from testing_worker.envbuild import MARKER
from testing_worker.payload import TestingPayload
from testing_worker.runtime import isolated_environment, worker_bin_dirs
from testing_worker.settings import TestingSettings, load_testing_settings
from testing_worker.worker import TestingWorker
from tests.helpers.recording_pm import RecordingPM

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def uv() -> str:
    from uv import find_uv_bin

    reason = env_projects.pypi_unreachable()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return find_uv_bin()


async def execute(
    workspace: Path,
    payload: dict[str, Any],
    settings: TestingSettings | None = None,
    pm: RecordingPM | None = None,
) -> tuple[str, RecordingPM]:
    pm = pm or RecordingPM()
    task = Assignment(task_id="t", task_name="tests", payload=payload)
    ctx = TaskContext(pm, task, workspace)  # type: ignore[arg-type]
    worker = TestingWorker(WorkerSettings(workspace=workspace, agent_id="testing-test"), settings)
    ctx.payload = parse_payload(TestingPayload, task.payload, task_id="t", role="testing")
    return await worker.execute(task, ctx), pm


def messages(pm: RecordingPM) -> list[str]:
    return [p[1] for p in pm.progress]


def environment(pm: RecordingPM) -> dict[str, Any]:
    data: dict[str, Any] = pm.artifacts[-1]["data"]["environment"]
    return data


async def test_build_ignores_the_projects_venv(tmp_path: Path, uv: str) -> None:
    env_projects.own_venv_project(tmp_path / "p")
    await asyncio.to_thread(env_projects.make_venv, tmp_path / "p", uv)
    (tmp_path / "p" / "requirements.txt").write_text("tabulate\n")
    with pytest.raises(
        TaskBlocked, match=r"1 of 2 tests failed in p: tests/test_own\.py::test_runs_in"
    ):  # it wants .venv
        await execute(tmp_path, {"path": "p", "environment": "build"})


async def test_a_venv_made_elsewhere_is_replaced_by_a_built_one(tmp_path: Path, uv: str) -> None:
    """A host's .venv in a container: its interpreter's path does not exist there."""
    env_projects.requirements_project(tmp_path / "p")
    venv = tmp_path / "p" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /home/someone/.local/share/uv/python/cpython-3.12/bin\n")
    (venv / "bin" / "python").symlink_to("/home/someone/.local/share/uv/python/cpython-3.12/bin/python3.12")
    message, pm = await execute(tmp_path, {"path": "p"})
    assert message.startswith("3 passed")
    assert (
        "The project's p/.venv does not run here (its interpreter "
        "/home/someone/.local/share/uv/python/cpython-3.12/bin/python3.12 does not exist here "
        "(made on another machine or in another container?)); building an environment from its metadata instead"
    ) in messages(pm)
    assert environment(pm)["sources"] == ["requirements.txt"]
    # named explicitly, it is the task's choice: blocked, not replaced
    with pytest.raises(
        TaskBlocked, match=r"payload.environment 'p/.venv' is not a virtual environment that runs here"
    ):
        await execute(tmp_path, {"path": "p", "environment": "p/.venv"})


async def test_a_venv_without_pytest_is_named(tmp_path: Path, uv: str) -> None:
    env_projects.strict_project(tmp_path / "p")
    await asyncio.to_thread(subprocess.run, [uv, "venv", "--quiet", str(tmp_path / "p" / "venv")], check=True)
    with pytest.raises(TaskBlocked) as info:
        await execute(tmp_path, {"path": "p"})
    assert info.value.description.startswith(
        "the project's own environment p/venv has no pytest (its Python "
    )
    assert info.value.description.endswith(
        "cannot import it): install pytest into it, or set payload.environment: build to have the worker make "
        "one from its metadata"
    )
    # a command that is not pytest runs in it all the same
    message, _ = await execute(
        tmp_path, {"path": "p", "command": 'python -c "import sys; print(sys.prefix)"'}
    )
    assert message.endswith(str(tmp_path / "p" / "venv"))


async def test_changed_metadata_builds_a_new_environment_and_old_ones_are_pruned(
    tmp_path: Path, uv: str
) -> None:
    env_projects.requirements_project(tmp_path / "p")
    settings = TestingSettings(env_cache=tmp_path / "cache")
    await execute(tmp_path, {"path": "p"}, settings)
    _, pm1 = await execute(tmp_path, {"path": "p"}, settings)
    key1 = environment(pm1)["key"]
    assert environment(pm1)["cached"] is True
    (tmp_path / "p" / "requirements.txt").write_text("tabulate==0.9.0\nsix\n")
    _, pm2 = await execute(tmp_path, {"path": "p"}, settings)
    key2 = environment(pm2)["key"]
    assert key2 != key1
    assert environment(pm2)["cached"] is False
    envs = settings.own_cache / "envs"
    assert {p.name for p in envs.iterdir() if p.is_dir()} == {key1, key2}
    # key1 unused for longer than the age limit: the next build removes it, never the one in use
    old = time.time() - 15 * 86400
    os.utime(envs / key1 / MARKER, (old, old))
    os.utime(envs / key2 / MARKER, (old, old))
    (tmp_path / "p" / "requirements.txt").write_text("tabulate==0.9.0\nsix\niniconfig\n")
    _, pm3 = await execute(tmp_path, {"path": "p"}, settings)
    assert {p.name for p in envs.iterdir() if p.is_dir()} == {environment(pm3)["key"]}


async def test_a_project_installed_by_its_requirements_is_fresh_on_every_run(tmp_path: Path, uv: str) -> None:
    """`.` in requirements.txt (not editable): the cached environment gets today's code, not the first run's."""
    root = tmp_path / "p"
    env_projects.write(
        root,
        {
            "pyproject.toml": '[project]\nname = "answer"\nversion = "1"\n\n[build-system]\nrequires = ["hatchling"]\n'
            'build-backend = "hatchling.build"\n',
            "requirements.txt": ".\n",
            "answer/__init__.py": "VALUE = 1\n",
            "tests/test_answer.py": "import answer\n\n\ndef test_value():\n    assert answer.VALUE == 2\n",
        },
    )
    with pytest.raises(TaskBlocked, match="assert 1 == 2"):
        await execute(tmp_path, {"path": "p", "command": "python -m pytest -q -p no:cacheprovider tests"})
    (root / "answer" / "__init__.py").write_text("VALUE = 2\n")
    message, pm = await execute(
        tmp_path, {"path": "p", "command": "python -m pytest -q -p no:cacheprovider tests"}
    )
    assert message.startswith("1 passed")
    assert environment(pm)["cached"] is True


async def test_two_workers_build_one_environment_once(tmp_path: Path, uv: str) -> None:
    env_projects.extra_project(tmp_path / "p")
    (tmp_path / "p" / "pyproject.toml").write_text(
        (tmp_path / "p" / "pyproject.toml")
        .read_text()
        .replace('"six>=1.16"', '"six>=1.15"')  # a key of its own
    )
    settings = TestingSettings(env_cache=tmp_path / "cache")
    results = await asyncio.gather(
        execute(tmp_path, {"path": "p"}, settings), execute(tmp_path, {"path": "p"}, settings)
    )
    envs = [environment(pm) for _, pm in results]
    assert [e["cached"] for e in envs].count(False) == 1  # one built it, the other waited and reused it
    assert envs[0]["key"] == envs[1]["key"]
    waited = [m for _, pm in results for m in messages(pm) if m.startswith("Waiting for another worker")]
    assert len(waited) <= 1  # (it says so, unless the build was over before it looked)


async def test_a_uv_project_is_synced_from_its_lock(tmp_path: Path, uv: str) -> None:
    root = tmp_path / "p"
    env_projects.extra_project(root)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        text.replace('docs = ["this-is-never-installed-h25"]\n', "")
    )  # uv locks every extra
    await asyncio.to_thread(subprocess.run, [uv, "lock", "--quiet"], cwd=root, check=True, timeout=300)
    lock = (root / "uv.lock").read_text()
    message, pm = await execute(tmp_path, {"path": "p"})
    assert message.startswith("3 passed")
    assert environment(pm)["sources"] == ["uv.lock (pyproject.toml [test] + group test)"]
    assert (root / "uv.lock").read_text() == lock  # never rewritten
    assert not (root / ".venv").exists()  # the environment lives in the cache, not in the project
    # a lock older than pyproject.toml is what `uv sync --locked` refuses in CI: a blocker saying so
    text = (
        (root / "pyproject.toml")
        .read_text()
        .replace('test = ["tabulate"]', 'test = ["tabulate", "iniconfig"]')
    )
    (root / "pyproject.toml").write_text(text)
    with pytest.raises(
        TaskBlocked, match=r"uv\.lock is out of date with pyproject\.toml \(run `uv lock` in the project\)"
    ):
        await execute(tmp_path, {"path": "p"})


async def test_install_brings_a_tool_the_project_does_not_declare(tmp_path: Path, uv: str) -> None:
    """README's `make add-task ID=lint ... "command": "ruff check .", "install": ["ruff"]`."""
    env_projects.write(
        tmp_path / "shop", {"shop/__init__.py": "def total(prices):\n    return sum(prices)\n"}
    )
    message, pm = await execute(tmp_path, {"path": "shop", "command": "ruff check .", "install": ["ruff"]})
    assert message.startswith("ruff check . passed in shop (exit code 0, ")
    assert "with a test environment from payload.install (ruff)" in messages(pm)[-1]


async def test_an_install_over_its_time_is_stopped(tmp_path: Path, uv: str) -> None:
    env_projects.requirements_project(tmp_path / "p")
    (tmp_path / "p" / "requirements.txt").write_text("tabulate==0.8.9\n")
    settings = TestingSettings(env_cache=tmp_path / "cache", install_timeout_seconds=0.2)
    with pytest.raises(TaskBlocked, match=r"took over 0.2 s \(TESTING_INSTALL_TIMEOUT_SECONDS\)"):
        await execute(tmp_path, {"path": "p"}, settings)


async def test_the_fleet_default_can_be_the_workers_own_environment(tmp_path: Path) -> None:
    env_projects.strict_project(tmp_path / "p")
    command = 'python -c "import sys; print(sys.executable)"'
    message, pm = await execute(
        tmp_path, {"path": "p", "command": command}, TestingSettings(default_environment="worker")
    )
    assert message.endswith(sys.executable)
    assert "with the worker's own environment" in messages(pm)[0]


async def test_a_python_that_does_not_exist_is_a_blocker(tmp_path: Path, uv: str) -> None:
    env_projects.strict_project(tmp_path / "p")
    with pytest.raises(TaskBlocked) as info:
        await execute(tmp_path, {"path": "p", "python": "3.99"})
    assert info.value.description.startswith(
        "could not install the test environment: no interpreter for Python '3.99' (payload.python) on this "
        "machine; uv said: error: No interpreter found for Python 3.99"
    )


def test_the_commands_variables_leave_the_workers_python_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.setenv("PM_AGENT_TOKEN", "secret")
    env = isolated_environment()
    assert not {"PYTHONPATH", "VIRTUAL_ENV", "PM_AGENT_TOKEN"} & set(env)
    own = worker_bin_dirs()
    assert own  # the suite runs in the fleet's .venv
    assert not own & {os.path.normpath(p) for p in env["PATH"].split(os.pathsep)}


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (
            {"environment": "worker", "python": "3.12"},
            "payload.python builds an environment, but payload.environment 'worker'",
        ),
        (
            {"environment": "p/.venv", "install": ["six"]},
            "payload.install builds an environment, but payload.environment",
        ),
        ({"install": []}, "payload.install must be a non-empty list"),
        ({"install": "six 'unclosed"}, "payload.install cannot be split"),
        ({"install": [1]}, "is not an argument"),
        ({"python": ""}, "payload.python must be a non-empty string"),
        ({"environment": "a\nb"}, "payload.environment must be a non-empty string"),
    ],
)
def test_bad_environment_payloads(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(TaskBlocked, match=problem):
        parse_payload(TestingPayload, payload, task_id="t", role="testing")


def test_environment_choice() -> None:
    def choice(**payload: Any) -> str | None:
        parsed: TestingPayload = parse_payload(TestingPayload, payload, task_id="t", role="testing")
        return parsed.environment_choice

    assert choice() is None  # the worker's default
    assert choice(python="3.12") == "build"
    assert choice(environment="auto", install="-e .[ci]") == "build"
    assert choice(environment="worker") == "worker"
    assert choice(environment="app/.tox/py312") == "app/.tox/py312"


def test_bad_settings_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTING_DEFAULT_ENVIRONMENT", "mine")
    monkeypatch.setenv("TESTING_INSTALL_TIMEOUT_SECONDS", "-1")
    with pytest.raises(SettingsError) as info:
        load_testing_settings()
    assert str(info.value).startswith("invalid setting TESTING_DEFAULT_ENVIRONMENT (got 'mine'): ")
    assert "; invalid setting TESTING_INSTALL_TIMEOUT_SECONDS (got '-1'): " in str(info.value)
    done = subprocess.run(
        [sys.executable, "-m", "testing_worker"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("python -m testing_worker: invalid setting TESTING_DEFAULT_ENVIRONMENT")
    assert json.dumps(done.stderr).count("\\n") == 1  # one line
