"""A PermissionError becomes a blocker naming the uid, the folder, its owner and the one fix.

The kernel decides who may write where, so each case runs for real in a child process as a
non-root user (root may write anywhere), against folders owned by the users each case needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import open_scratch

NOBODY = 65534
OTHER = 4242  # "the host user" whose project is mounted

PROBE = """
import json, sys
from pathlib import Path
from pm_worker.permissions import describe
target, in_container = Path(sys.argv[1]), sys.argv[2] == "1"
try:
    target.mkdir(parents=True)
except PermissionError as exc:
    print(json.dumps(describe(exc, role="documentation", in_container=in_container)))
"""


@pytest.fixture
def root() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to make folders of other users and run as one")
    with open_scratch("pm-perm-") as path:
        yield path


def as_nobody(target: Path, in_container: bool) -> str:
    argv = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        sys.executable,
        "-c",
        PROBE,
        str(target),
        "1" if in_container else "0",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    text: str = json.loads(proc.stdout)
    return text


def folder(root: Path, name: str, uid: int, mode: int = 0o755) -> Path:
    path = root / name
    path.mkdir()
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


def test_a_project_of_another_user_in_compose_says_run_the_fleet_as_that_user(root: Path) -> None:
    app = folder(root, "app", OTHER)
    assert as_nobody(app / "docs", in_container=True) == (
        f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot write {app} (owned by uid {OTHER}). Fix: run the "
        f"fleet as the folder's owner: `PM_UID={OTHER} PM_GID={OTHER} make up` in the fleet's folder (Compose "
        "then runs the workers with that uid; docs/docker.md, 'Your project'), then rerun the task"
    )


def test_a_root_owned_copy_in_compose_says_chown_it_in_the_container(root: Path) -> None:
    app = folder(root, "app", 0)
    text = as_nobody(app / "docs" / "api", in_container=True)
    assert text.startswith(
        f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot write {app} (owned by uid 0)"
    )
    assert f"Fix: `docker compose exec -u 0 documentation-worker chown -R {NOBODY}:{NOBODY} {app}`" in text


def test_local_processes_say_chown_on_this_machine(root: Path) -> None:
    app = folder(root, "app", OTHER)
    assert f"Fix: `sudo chown -R {NOBODY}:{NOBODY} {app}`, then rerun the task" in as_nobody(
        app / "docs", False
    )


def test_a_read_only_folder_of_our_own_says_chmod(root: Path) -> None:
    app = folder(root, "app", NOBODY, mode=0o555)
    assert f"cannot write {app} (owned by uid {NOBODY}). Fix: `chmod -R u+rwX {app}`" in as_nobody(
        app / "d", False
    )


def test_the_stub_recognises_it_before_its_generic_permission_advice() -> None:
    from pm_agent_stub.suggestions import suggest_resolution

    text = (
        "permission denied: uid 10001 (gid 10001) cannot write /workspace/app (owned by uid 1000). Fix: run "
        "the fleet as the folder's owner: `PM_UID=1000 PM_GID=1000 make up` in the fleet's folder"
    )
    assert suggest_resolution(text).startswith("The worker's user may not use that folder")
    assert "credentials" not in suggest_resolution(text)


def test_a_folder_it_may_not_enter_is_named_and_describing_it_never_raises(root: Path) -> None:
    private = folder(root, "private", OTHER, mode=0o700)
    text = as_nobody(private / "app" / "docs", in_container=False)
    assert text.startswith(f"permission denied: uid {NOBODY} (gid {NOBODY}) cannot enter {private} (so not ")
    assert f"(owned by uid {OTHER})" in text
