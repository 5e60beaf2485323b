"""Issue 12's new user under Docker Compose, with the README's commands only (marker `docker`).

In a checkout of the fleet (a copy of this working tree, so the test's `.env` is its own) the
user runs `make up PROJECT_DIR=~/src/<name> PROJECT_FILE=fleet.yaml` on a project of their
own, owned by their uid (1000 here), outside the checkout. Then, as under processes: the API
docs appear in their folder and are theirs (uid 1000), the failing test blocks its task by
name (`make show`), they fix it on the host and `make rerun`, and the image task builds and
smoke-tests their image through the socket. Last, `docker compose up -d --wait --scale
testing-worker=2` run directly — no make, no PROJECT_DIR in the shell — keeps the mount and
the uid (they come from .env), and the devops worker still builds. Compose project
`user-<id>`, removed with its volumes at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port
from tests.docker.fleet import CHECKOUT, REPO, run, wait_for
from tests.user.project import (
    FAILING_TEST,
    Project,
    agents,
    board,
    fix_the_bug,
    make,
    make_project,
    user_env,
    uv,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

HOST_UID = 1000  # the user who owns the project on the host (we may be root here)
SETTLE = 600.0
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".tools",
    ".run",
    ".env",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.db",
    "*.db-wal",
    "*.db-shm",
)


@dataclass
class UserFleet:
    checkout: Path
    project: Project
    env: dict[str, str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def make(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        return make(self.checkout, *args, env=self.env, timeout=timeout)

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` typed directly in the checkout: no PROJECT_DIR, PM_UID in the shell."""
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def containers(self, service: str) -> list[str]:
        return run(
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={self.env['COMPOSE_PROJECT_NAME']}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            ]
        ).stdout.split()


@pytest.fixture(scope="module")
def fleet(engine_env: dict[str, str]) -> Iterator[UserFleet]:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the user's project to another uid (as a host user's own files)")
    if shutil.which("make") is None or uv() is None:
        pytest.skip("needs make, and uv on PATH or in .tools/ (make install bootstraps it there)")
    scratch = Path(tempfile.mkdtemp(prefix="pm-user-compose-"))
    scratch.chmod(0o755)
    checkout = scratch / "pm-agent-fleet"
    shutil.copytree(REPO, checkout, ignore=COPY_IGNORE, symlinks=True)
    name = f"shop-{uuid.uuid4().hex[:6]}"
    project = make_project(scratch / "home", name, image=f"user-compose/{name}:latest")
    for path in [scratch / "home", scratch / "home" / "src", *scratch.joinpath("home").rglob("*")]:
        os.chown(path, HOST_UID, HOST_UID)
    port = free_port()
    env = user_env(
        COMPOSE_PROJECT_NAME=f"user-{uuid.uuid4().hex[:8]}",
        TAG=f"user-{CHECKOUT}",
        PM_AGENT_PORT=str(port),
        PYTHON_IMAGE=engine_env["PYTHON_IMAGE"],
        COLUMNS="200",
    )
    fleet = UserFleet(checkout, project, env, port)
    try:
        yield fleet
    finally:
        logs = fleet.compose("logs", "--no-color", timeout=120)
        (REPO / ".run" / "e2e").mkdir(parents=True, exist_ok=True)
        (REPO / ".run" / "e2e" / f"{env['COMPOSE_PROJECT_NAME']}.log").write_text(logs.stdout + logs.stderr)
        fleet.compose("down", "-v", "--timeout", "30", timeout=300)
        for image in (project.image, f"{project.image.rsplit(':', 1)[0]}-2:latest"):
            subprocess.run(
                ["docker", "image", "rm", "-f", image], capture_output=True, check=False, timeout=60
            )
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_new_users_project_under_compose(fleet: UserFleet) -> None:
    project = fleet.project
    up = fleet.make("up", f"PROJECT_DIR={project.path}", "PROJECT_FILE=fleet.yaml")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert f"-> /workspace/{project.name} in the workers, which run as uid {HOST_UID}" in up.stderr
    assert "loaded 3 new task(s), 0 already on the board" in up.stderr
    assert "no such host" not in up.stdout + up.stderr  # nothing asked of a registry (pull_policy)
    recorded = (fleet.checkout / ".env").read_text()
    assert f"PROJECT_DIR={project.path}" in recorded
    assert f"PM_UID={HOST_UID}" in recorded

    # Docs land in the user's folder, as theirs; the failing test blocks its task by name.
    def first_round() -> bool:
        now = {t: c["task"]["status"] for t, c in board(fleet.url).items()}
        return now.get("api-docs") == "done" and now.get("tests") == "blocked"

    wait_for("api-docs done and tests blocked", first_round, timeout=SETTLE, interval=2.0)
    index = project.path / "docs" / "api" / "shop" / "index.md"  # the package's own folder
    assert index.is_file()
    assert index.stat().st_uid == HOST_UID, "generated files belong to the user, not to uid 10001"
    assert (project.path / "reports" / "tests.xml").stat().st_uid == HOST_UID
    shown = fleet.make("show", "TASK=tests")
    assert shown.returncode == 0, shown.stderr
    assert FAILING_TEST in shown.stdout
    assert "suggestion: Tests are failing" in shown.stdout

    # Fixed on the host, rerun: done, and the image that waited for it is built and smoke-tested.
    fix_the_bug(project)
    rerun = fleet.make("rerun", "TASK=tests", "REASON=fixed the discount")
    assert rerun.returncode == 0, rerun.stderr

    def image_ended() -> dict[str, object] | None:
        ctx = board(fleet.url)["image"]
        return ctx if ctx["task"]["status"] in ("done", "blocked") else None

    image = wait_for("the image task to end", image_ended, timeout=SETTLE, interval=2.0)
    assert image["task"]["status"] == "done", image["blockers"]  # type: ignore[index]
    assert board(fleet.url)["tests"]["task"]["run"] == 2
    smoke = run(["docker", "run", "--rm", project.image]).stdout
    assert smoke.strip() == "5"

    # `--scale` typed directly: the mount and the uid hold (from .env), and devops still builds.
    scaled = fleet.compose("up", "-d", "--wait", "--scale", "testing-worker=2")
    assert scaled.returncode == 0, scaled.stderr[-3000:]
    testers = fleet.containers("testing-worker")
    assert len(testers) == 2
    for cid in [*testers, *fleet.containers("devops-worker"), *fleet.containers("documentation-worker")]:
        info = json.loads(run(["docker", "inspect", cid]).stdout)[0]
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts[f"/workspace/{project.name}"]["Source"] == str(project.path), info["Name"]
    worker_user = json.loads(run(["docker", "inspect", testers[0]]).stdout)[0]["Config"]["User"]
    assert worker_user == f"{HOST_UID}:{HOST_UID}"
    wait_for(
        "two testing agents",
        lambda: (
            len([a for a in agents(fleet.url) if a["role"] == "testing" and a["status"] != "offline"]) == 2
        ),
        timeout=180,
    )
    again = fleet.make(
        "add-task",
        "ID=image-2",
        "NAME=Build the shop image again",
        "SKILLS=docker",
        f'PAYLOAD={{"context": "{project.name}", "tag": "{project.image.rsplit(":", 1)[0]}-2:latest"}}',
    )
    assert again.returncode == 0, again.stderr

    def rebuilt() -> dict[str, object] | None:
        ctx = board(fleet.url)["image-2"]
        return ctx if ctx["task"]["status"] in ("done", "blocked") else None

    second = wait_for("the second build", rebuilt, timeout=SETTLE, interval=2.0)
    assert second["task"]["status"] == "done", second["blockers"]  # type: ignore[index]

    status = fleet.make("status")
    assert status.returncode == 0, status.stderr
    assert "image-2" in status.stdout
