"""The real devops worker process against the real stub process over HTTP.

With an engine: it builds a tiny real image (FROM the local Python base image, passed
through as PYTHON_IMAGE) and runs its smoke command; a second task with a wrong
expectation ends blocked with the container's output. Without an engine these tests are
skipped with the reason. The unreachable-engine test needs no engine at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest

from pm_agent_stub.testing import StubProcess, call_tool, read_events, start_stub, tasks_yaml
from tests.helpers import REPO_ROOT

DOCKERFILE = """\
ARG PYTHON_IMAGE=pm-fleet-test/no-such-base:never
FROM ${PYTHON_IMAGE}
COPY greeting.txt /greeting.txt
CMD ["cat", "/greeting.txt"]
"""


def start_worker(stub: StubProcess, workspace: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "DOCKER_HOST"))}
    full.update(
        {
            "PM_AGENT_URL": stub.url,
            "WORKSPACE": str(workspace),
            "LOG_FORMAT": "json",
            "HEALTH_DIR": str(workspace.parent / "health"),
            "POLL_WAIT_SECONDS": "2",
            "SHUTDOWN_GRACE_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "devops_worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full,
            cwd=REPO_ROOT,
        )


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_settled(
    stub: StubProcess, task_ids: list[str], proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> dict[str, dict[str, Any]]:
    """Each task's context once every task is done or blocked."""
    with anyio.fail_after(timeout):
        while True:
            async with mcp.Client(stub.url) as client:
                ctxs = {t: await call_tool(client, "get_task_context", {"task_id": t}) for t in task_ids}
            if all(c["task"]["status"] in ("done", "blocked") for c in ctxs.values()):
                return ctxs
            if proc.poll() not in (None, 0):
                raise AssertionError(f"worker exited {proc.returncode}:\n{read(log)}")
            await anyio.sleep(0.3)


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, Path]:
    workspace = tmp_path / "workspace"
    (workspace / "hello").mkdir(parents=True)
    (workspace / "hello" / "Dockerfile").write_text(DOCKERFILE)
    return workspace, tmp_path


@pytest.mark.anyio
async def test_builds_and_smoke_tests_a_real_image(board: tuple[Path, Path], base_image: str) -> None:
    import docker

    workspace, tmp = board
    token = uuid.uuid4().hex[:12]
    (workspace / "hello" / "greeting.txt").write_text(f"hello from {token}\n")
    tag = f"pm-fleet-test/hello-{token}:latest"
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "image",
                "name": "Build and smoke-test hello",
                "required_skills": ["docker"],
                "priority": "high",
                "payload": {
                    "context": "hello",
                    "tag": tag,
                    "smoke_command": "cat /greeting.txt",
                    "expect_output": f"hello from {token}",
                },
            },
            {
                "id": "image-wrong",
                "name": "Same image, wrong expectation",
                "required_skills": ["docker"],
                "dependencies": ["image"],
                "payload": {
                    "context": "hello",
                    "tag": f"{tag}-wrong",
                    "smoke_command": ["cat", "/greeting.txt"],
                    "expect_output": "goodbye",
                },
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(stub, workspace, log, AGENT_ID="devops-it", MAX_TASKS="2", PYTHON_IMAGE=base_image)
    client = docker.from_env()
    try:
        ctxs = await wait_settled(stub, ["image", "image-wrong"], proc, log, timeout=240)
        good, wrong = ctxs["image"], ctxs["image-wrong"]
        assert good["task"]["status"] == "done", json.dumps(good, indent=1) + log.read_text()
        [art] = good["artifacts"]
        assert art["artifact_type"] == "docker_image"
        assert art["location"] == tag
        image = client.images.get(tag)
        assert art["data"]["image_id"] == image.id
        assert art["data"]["size"] == image.attrs["Size"]
        assert f"hello from {token}" in art["data"]["smoke_output"]
        assert image.labels["pm-agent-fleet.task"] == "image"
        assert good["task"]["checkpoint"]["image_id"] == image.id, "the build was checkpointed"
        messages = [p["message"] for p in good["progress_log"]]
        assert any(m.startswith(f"build {tag}: Step ") for m in messages), messages
        assert any("smoke test passed" in m for m in messages), messages

        assert wrong["task"]["status"] == "blocked"
        [blocker] = wrong["blockers"]
        assert "does not contain 'goodbye'" in blocker["description"]
        assert f"hello from {token}" in blocker["description"], "the blocker quotes the container's output"
        assert blocker["resolution_suggestion"]
        leftovers = client.containers.list(all=True, filters={"label": "pm-agent-fleet.smoke-test"})
        assert not [
            c for c in leftovers if c.labels.get("pm-agent-fleet.task") in ("image", "image-wrong")
        ], "smoke-test containers are removed"
        proc.wait(timeout=30)
        assert proc.returncode == 0, log.read_text()
    finally:
        stop(proc)
        stub.stop()
        for name in (tag, f"{tag}-wrong"):
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(name, force=True)
        client.close()


@pytest.mark.anyio
async def test_build_failure_is_a_blocker_with_the_engine_output(
    board: tuple[Path, Path], base_image: str
) -> None:
    workspace, tmp = board
    (workspace / "hello" / "Dockerfile").write_text(
        "ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN echo about to fail && exit 7\n"
    )
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "broken",
                "name": "Broken build",
                "required_skills": ["docker"],
                "payload": {"context": "hello", "tag": f"pm-fleet-test/broken-{uuid.uuid4().hex[:8]}"},
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(stub, workspace, log, AGENT_ID="devops-it", MAX_TASKS="1", PYTHON_IMAGE=base_image)
    try:
        ctxs = await wait_settled(stub, ["broken"], proc, log, timeout=120)
        [blocker] = ctxs["broken"]["blockers"]
        assert ctxs["broken"]["task"]["status"] == "blocked"
        assert "failed" in blocker["description"]
        assert "non-zero code: 7" in blocker["description"]
        assert "about to fail" in blocker["description"], "the build's last output is quoted"
        assert blocker["resolution_suggestion"]
    finally:
        stop(proc)
        stub.stop()


@pytest.mark.anyio
async def test_a_base_image_no_registry_gives_says_which_local_one_to_use(
    board: tuple[Path, Path], base_image: str
) -> None:
    """Issue 25: a user's Dockerfile `FROM python:<tag>` on an engine without that image and
    without a registry: the blocker names the image, the engine's own images of that name,
    and PYTHON_IMAGE (both in the Dockerfile and for the fleet)."""
    workspace, tmp = board
    missing = f"python:0.{uuid.uuid4().hex[:6]}-slim"  # a tag no registry and no engine has
    (workspace / "hello" / "Dockerfile").write_text(f"FROM {missing}\nCOPY greeting.txt /greeting.txt\n")
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "image",
                "name": "Build",
                "required_skills": ["docker"],
                "payload": {"context": "hello", "tag": f"pm-fleet-test/base-{uuid.uuid4().hex[:8]}"},
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(stub, workspace, log, AGENT_ID="devops-base", MAX_TASKS="1", PYTHON_IMAGE=base_image)
    try:
        ctxs = await wait_settled(stub, ["image"], proc, log, timeout=180)
        [blocker] = ctxs["image"]["blockers"]
        text = blocker["description"]
        assert f"The base image ({missing}) could not be fetched" in text, text
        if base_image.startswith("python:"):
            assert base_image in text.split("This engine has: ", 1)[1].split("\n", 1)[0]
        assert "`ARG PYTHON_IMAGE=python:3.12-slim` and `FROM ${PYTHON_IMAGE}`" in text
        assert "PYTHON_IMAGE=" in text
        assert "make up" in text
        assert text.index("could not be fetched") < text.index("--- last build output ---")
    finally:
        stop(proc)
        stub.stop()


@pytest.mark.anyio
async def test_unreachable_engine_ends_as_a_blocker_saying_so(board: tuple[Path, Path]) -> None:
    workspace, tmp = board
    (workspace / "hello" / "greeting.txt").write_text("hi\n")
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "image",
                "name": "Build hello",
                "required_skills": ["docker"],
                "payload": {"context": "hello", "smoke_command": "cat /greeting.txt"},
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(
        stub, workspace, log, AGENT_ID="devops-it", MAX_TASKS="1", DOCKER_HOST="unix:///nonexistent.sock"
    )
    try:
        ctxs = await wait_settled(stub, ["image"], proc, log, timeout=60)
        ctx = ctxs["image"]
        assert ctx["task"]["status"] == "blocked"
        [blocker] = ctx["blockers"]
        assert blocker["description"].startswith("Docker engine unreachable at unix:///nonexistent.sock: ")
        assert blocker["severity"] == "critical"
        assert "Docker engine" in blocker["resolution_suggestion"]
        proc.wait(timeout=30)
        assert proc.returncode == 0
    finally:
        stop(proc)
        stub.stop()


@pytest.mark.anyio
async def test_a_tag_on_an_image_the_fleet_did_not_build_is_never_moved(
    board: tuple[Path, Path], base_image: str
) -> None:
    """A tag that already names a foreign image (here a fresh tag of the base image, standing in
    for the fleet's own base image) is refused; the tag still names the same image afterwards."""
    import docker

    workspace, tmp = board
    (workspace / "hello" / "greeting.txt").write_text("hi\n")
    client = docker.from_env()
    foreign = f"pm-fleet-test/foreign-{uuid.uuid4().hex[:8]}:latest"
    repo, _, version = foreign.rpartition(":")
    client.images.get(base_image).tag(repo, version)
    before = client.images.get(foreign).id
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "clobber",
                "name": "Build over a foreign tag",
                "required_skills": ["docker"],
                "payload": {"context": "hello", "tag": foreign},
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(stub, workspace, log, AGENT_ID="devops-it", MAX_TASKS="1", PYTHON_IMAGE=base_image)
    try:
        ctxs = await wait_settled(stub, ["clobber"], proc, log, timeout=120)
        assert ctxs["clobber"]["task"]["status"] == "blocked", read(log)
        [blocker] = ctxs["clobber"]["blockers"]
        assert blocker["description"].startswith(
            f"payload.tag {foreign!r} already names image {before[:19]}, which this fleet did not build "
            "(it has no pm-agent-fleet.task label): the worker never moves such a tag."
        )
        assert client.images.get(foreign).id == before
    finally:
        stop(proc)
        stub.stop()
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(foreign)  # the tag only: the base image stays
        client.close()


@pytest.mark.anyio
async def test_a_build_with_one_enormous_output_line_ends_in_one_blocker(
    board: tuple[Path, Path], base_image: str
) -> None:
    workspace, tmp = board
    (workspace / "hello" / "Dockerfile").write_text(
        "ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN python -c \"print('E' * 20000); raise SystemExit(3)\"\n"
    )
    project = tmp / "board.yaml"
    project.write_text(
        tasks_yaml(
            {
                "id": "loud",
                "name": "Loud broken build",
                "required_skills": ["docker"],
                "payload": {"context": "hello", "tag": f"pm-fleet-test/loud-{uuid.uuid4().hex[:8]}"},
            },
            project="devops-it",
        )
    )
    stub = start_stub(tmp / "board.db", project=project)
    log = tmp / "worker.log"
    proc = start_worker(stub, workspace, log, AGENT_ID="devops-it", MAX_TASKS="1", PYTHON_IMAGE=base_image)
    try:
        ctxs = await wait_settled(stub, ["loud"], proc, log, timeout=180)
        assert ctxs["loud"]["task"]["status"] == "blocked", read(log)
        [blocker] = ctxs["loud"]["blockers"]
        assert "non-zero code: 3" in blocker["description"]
        assert "… [cut " in blocker["description"]
        assert len(blocker["description"]) < 10_000
        assert len(read_events(stub.db, "assigned", "loud")) == 1
        assert "outcome_refused_blocking_instead" not in read(log)
    finally:
        stop(proc)
        stub.stop()
