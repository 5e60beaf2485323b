"""A folder the documentation worker may not use ends as a blocker naming it, its owner, the uid and the fix.

Issue 25: writes relative to a folder handle raised `PermissionError: 'api'`, which the
blocker then looked up against the worker's cwd ("denied access to api (owned by uid
10001)" when `api` did not exist and `docs/` was root's), and other refusals came out as
"cannot write index.md in docs/api/: Permission denied", for which the stub could only
suggest checking "the credentials/token". The kernel decides who may write where, so each
case runs the real worker process as a non-root user (uid 65534, via setpriv) against the
real stub, on folders owned by the users each case needs, with a cwd holding a decoy `api`
folder of yet another user (what the old lookup would have named).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import load_tasks, start_stub, task_context
from tests.helpers import REPO_ROOT, open_scratch

NOBODY = 65534
OTHER = 4242  # another user, e.g. the host user whose project is mounted
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def as_nobody(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def interpreter_for_nobody() -> tuple[str, str] | None:
    """(python, PYTHONPATH) uid 65534 can run the worker with, parser child included.

    This interpreter when that user may execute it; else (a venv over a pyenv Python kept in
    /root, as on the team's machines) the system's Python of the same version, given this
    venv's packages and the workspace's sources on PYTHONPATH (which `python -P` keeps)."""
    sources = [str(p) for p in sorted(REPO_ROOT.glob("*/src")) + sorted(REPO_ROOT.glob("workers/*/src"))]
    packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python, path in (
        (sys.executable, [str(REPO_ROOT)]),
        (f"/usr/bin/python{version}", [*packages, *sources, str(REPO_ROOT)]),
    ):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        probe = (  # what the worker does first: start its parser child
            "import asyncio; from documentation_worker.parsing import ParserProcess\n"
            "async def start():\n"
            "    async with ParserProcess(timeout=30, memory_mb=512) as parser:\n"
            "        await parser._start()\n"
            "asyncio.run(start())"
        )
        done = subprocess.run(
            as_nobody(python, "-c", probe), env=env, capture_output=True, timeout=60, check=False
        )
        if done.returncode == 0:
            return python, env["PYTHONPATH"]
    return None


@pytest.fixture
def root() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to make folders of other users and run the worker as one")
    with open_scratch("pm-docs-perm-") as path:
        yield path


@pytest.fixture(scope="module")
def python() -> tuple[str, str]:
    found = interpreter_for_nobody() if os.geteuid() == 0 and shutil.which("setpriv") else None
    if found is None:
        pytest.skip(f"no Python that uid {NOBODY} may run the worker and its parser child with")
    return found


def owned(path: Path, uid: int, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


def workspace_with_project(root: Path) -> Path:
    """`app/shop`, a package the worker may read, in a project copied in as root."""
    ws = owned(root / "workspace", 0)
    shutil.copytree(FIXTURES / "shapes", ws / "app" / "shop")
    for path in [ws / "app", *(ws / "app").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return ws


def run_as_nobody(python: tuple[str, str], root: Path, ws: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The worker as uid 65534 on one task, its cwd a folder with a decoy `api` of another user."""
    cwd = owned(root / "cwd", 0)
    owned(cwd / "api", OTHER)
    health = owned(root / "health", NOBODY)
    stub = start_stub(root / "board.db")
    try:
        load_tasks(
            stub.db, {"id": "api", "name": "Docs", "required_skills": ["documentation"], "payload": payload}
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_", "DOCS_"))}
        env.update(
            PM_AGENT_URL=stub.url,
            WORKSPACE=str(ws),
            AGENT_ID="docs-nobody",
            MAX_TASKS="1",
            POLL_WAIT_SECONDS="1",
            LOG_FORMAT="json",
            HEALTH_DIR=str(health),
            PYTHONPATH=python[1],
        )
        worker = subprocess.run(
            as_nobody(python[0], "-m", "documentation_worker"),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "Traceback" not in worker.stderr
        context: dict[str, Any] = task_context(stub, "api")
        context["log"] = worker.stderr
        return context
    finally:
        stub.stop()


def the_blocker(context: dict[str, Any]) -> str:
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    assert blocker["resolution_suggestion"].startswith("The worker's user may not use that folder")
    assert "credentials" not in blocker["resolution_suggestion"]
    assert '"level": "error"' not in context["log"]  # a person's problem, not the worker's bug
    description: str = blocker["description"]
    return description


def test_a_missing_output_folder_under_roots_docs_names_docs_and_its_owner(
    python: tuple[str, str], root: Path
) -> None:
    """The issue's case: docs/ is root's, docs/api/shop/ does not exist yet."""
    ws = workspace_with_project(root)
    docs = owned(ws / "app" / "docs", 0)
    assert the_blocker(run_as_nobody(python, root, ws, {"path": "app/shop"})) == (
        f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot write {docs} (owned by uid 0). "
        f"Fix: `sudo chown -R {NOBODY}:{NOBODY} {docs}`, then rerun the task"
    )
    assert not (docs / "api").exists()


def test_an_output_folder_of_another_user_names_that_folder_and_user(
    python: tuple[str, str], root: Path
) -> None:
    ws = workspace_with_project(root)
    site = owned(ws / "app" / "site", OTHER)
    text = the_blocker(run_as_nobody(python, root, ws, {"path": "app/shop", "output": "app/site/"}))
    assert text == (
        f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot write {site} (owned by uid {OTHER}). "
        f"Fix: `sudo chown -R {NOBODY}:{NOBODY} {site}`, then rerun the task"
    )
    assert list(site.iterdir()) == []


def test_a_package_folder_it_may_not_read_says_cannot_read(python: tuple[str, str], root: Path) -> None:
    ws = workspace_with_project(root)
    package = ws / "app" / "shop"
    os.chown(package, OTHER, OTHER)
    package.chmod(0o700)
    text = the_blocker(run_as_nobody(python, root, ws, {"path": "app/shop", "output": "out/"}))
    assert text == (
        f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot read {package} (owned by uid {OTHER}). "
        f"Fix: `sudo chown -R {NOBODY}:{NOBODY} {package}`, then rerun the task"
    )


def test_the_same_project_given_to_the_workers_user_is_documented(
    python: tuple[str, str], root: Path
) -> None:
    """The fix the blockers name works: the folder given to uid 65534, the task is done."""
    ws = workspace_with_project(root)
    docs = owned(ws / "app" / "docs", NOBODY)
    context = run_as_nobody(python, root, ws, {"path": "app/shop"})
    assert context["task"]["status"] == "done", context["blockers"]
    assert (docs / "api" / "shop" / "index.md").stat().st_uid == NOBODY
