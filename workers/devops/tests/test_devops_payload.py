"""Unit tests: payload handling, paths, and how each engine outcome is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devops_worker import BuildPayload, DevOpsWorker, engine, parse_payload
from devops_worker.engine import BuildFailed, BuildState, ImageInfo, SmokeResult
from devops_worker.worker import BuildProgress
from pm_worker import Artifact, Assignment, TaskBlocked, TaskContext
from pm_worker.settings import load_settings


def assignment(payload: dict[str, Any], task_id: str = "build-image", checkpoint: Any = None) -> Assignment:
    return Assignment(
        task_id=task_id,
        task_name=f"Task {task_id}",
        required_skills=["docker"],
        payload=payload,
        checkpoint=checkpoint,
    )


def context(pm: Any, task: Assignment, workspace: Path) -> TaskContext:
    """What `pm_worker` hands `execute`: a context holding the payload checked with `BuildPayload`."""
    ctx = TaskContext(pm, task, workspace)
    ctx.payload = parse_payload(task)
    return ctx


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "app").mkdir(parents=True)
    (ws / "app" / "Dockerfile").write_text("FROM scratch\n")
    (ws / "app" / "docker").mkdir()
    (ws / "app" / "docker" / "Dockerfile.prod").write_text("FROM scratch\n")
    (ws / "Dockerfile.outside").write_text("FROM scratch\n")
    return ws


@pytest.fixture
def worker(tmp_path: Path) -> DevOpsWorker:
    return DevOpsWorker(
        load_settings(agent_id="devops-test", workspace=tmp_path / "ws", health_dir=tmp_path / "health")
    )


# -- payload ---------------------------------------------------------------------------


def test_defaults() -> None:
    spec = parse_payload(assignment({}))
    assert spec == BuildPayload()
    assert spec.context == "."
    assert spec.dockerfile == "Dockerfile"
    assert spec.smoke_command is None
    assert spec.expect_output is None
    assert not spec.pull


def test_default_tag_is_derived_from_the_task_id() -> None:
    assert (
        parse_payload(assignment({}, task_id="Build_Demo.Image")).image_tag("Build_Demo.Image")
        == "pm-fleet/build-demo-image:latest"
    )
    assert BuildPayload(tag="demo-calc").image_tag("x") == "demo-calc:latest"
    assert BuildPayload(tag="localhost:5000/team/demo:1.2").image_tag("x") == "localhost:5000/team/demo:1.2"


@pytest.mark.parametrize("tag", ["Demo:latest", "demo calc", "demo:", ":latest", "demo:-x"])
def test_bad_tags_are_blockers_naming_the_field(tag: str) -> None:
    with pytest.raises(TaskBlocked, match="tag") as err:
        parse_payload(assignment({"tag": tag}))
    assert "invalid devops payload for task build-image" in err.value.description


def test_smoke_command_string_is_split_like_a_shell_would_without_one() -> None:
    spec = parse_payload(assignment({"smoke_command": "python -c 'print(2 + 3)'"}))
    assert spec.smoke_command == ["python", "-c", "print(2 + 3)"]
    assert parse_payload(assignment({"smoke_command": ["a", "b c"]})).smoke_command == ["a", "b c"]
    assert parse_payload(assignment({"smoke_command": ""})).smoke_command is None
    with pytest.raises(TaskBlocked, match="smoke_command"):
        parse_payload(assignment({"smoke_command": "echo 'unclosed"}))


def test_unknown_fields_are_refused_so_a_typo_cannot_turn_a_check_off() -> None:
    with pytest.raises(TaskBlocked) as err:
        parse_payload(assignment({"expected_output": "5"}))
    text = err.value.description
    assert "unknown field 'expected_output'" in text
    assert "expect_output" in text


def test_wrong_types_and_ranges_are_blockers() -> None:
    with pytest.raises(TaskBlocked, match="smoke_timeout_seconds"):
        parse_payload(assignment({"smoke_timeout_seconds": 0}))
    with pytest.raises(TaskBlocked, match="build_args"):
        parse_payload(assignment({"build_args": ["X=1"]}))


def test_build_args_become_text() -> None:
    spec = parse_payload(assignment({"build_args": {"N": 3, "FLAG": True, "EMPTY": None, "S": "x"}}))
    assert spec.build_args == {"N": "3", "FLAG": "true", "EMPTY": "", "S": "x"}


def test_python_image_passes_through_from_the_environment_unless_given() -> None:
    env = {"PYTHON_IMAGE": "python:3.11-slim", "OTHER": "no"}
    assert BuildPayload().effective_build_args(env) == {"PYTHON_IMAGE": "python:3.11-slim"}
    given = BuildPayload(build_args={"PYTHON_IMAGE": "mine:1", "X": "1"})
    assert given.effective_build_args(env) == {"PYTHON_IMAGE": "mine:1", "X": "1"}
    assert BuildPayload().effective_build_args({}) == {}
    assert BuildPayload().effective_build_args({"PYTHON_IMAGE": ""}) == {}


# -- paths -----------------------------------------------------------------------------


def test_locate_context_and_dockerfile(workspace: Path, pm: Any) -> None:
    ctx = TaskContext(pm, assignment({}), workspace)
    assert DevOpsWorker._locate(ctx, BuildPayload(context="app")) == (workspace / "app", "Dockerfile")
    assert DevOpsWorker._locate(ctx, BuildPayload(context="app", dockerfile="docker/Dockerfile.prod")) == (
        workspace / "app",
        "docker/Dockerfile.prod",
    )


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"context": "nope"}, "missing file or folder"),
        ({"context": "../.."}, "leaves the workspace"),
        ({"context": "app/Dockerfile"}, "is a file"),
        ({"context": "app", "dockerfile": "Dockerfile.missing"}, "missing file or folder"),
        ({"context": "app", "dockerfile": "../Dockerfile.outside"}, "inside the build context"),
        ({"context": "app", "dockerfile": "docker"}, "inside the build context"),
    ],
)
def test_bad_paths_are_blockers(workspace: Path, pm: Any, payload: dict[str, Any], words: str) -> None:
    ctx = TaskContext(pm, assignment(payload), workspace)
    with pytest.raises(TaskBlocked, match=words):
        DevOpsWorker._locate(ctx, BuildPayload.model_validate(payload))


# -- outcomes, with the engine replaced ------------------------------------------------


class FakeDockerClient:
    def close(self) -> None:
        pass


IMAGE = ImageInfo(image_id="sha256:" + "ab" * 32, size=12_345_678, tags=("demo:latest",))


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {
        "build": 0,
        "smoke": [],
        "existing": None,
        "smoke_result": SmokeResult(0, "5\n", False, 0.1),
    }

    def build(client: Any, **kw: Any) -> ImageInfo:
        calls["build"] += 1
        calls["build_kw"] = kw
        state: BuildState = kw["state"]
        for i in range(1, 4):
            state.add(f"Step {i}/3 : RUN something")
        return IMAGE

    def smoke(client: Any, **kw: Any) -> SmokeResult:
        calls["smoke"].append(kw)
        kw["on_container"]("c0ffee")
        result: SmokeResult = calls["smoke_result"]
        return result

    monkeypatch.setattr(engine, "connect", lambda timeout=60.0: FakeDockerClient())
    monkeypatch.setattr(engine, "build", build)
    monkeypatch.setattr(engine, "smoke", smoke)
    monkeypatch.setattr(engine, "existing_image", lambda client, image_id, tag: calls["existing"])
    monkeypatch.setattr(
        engine, "check_tag", lambda client, tag: None
    )  # the real one: test_devops_integration
    return calls


PAYLOAD = {
    "context": "app",
    "tag": "demo:latest",
    "smoke_command": "python -m calc add 2 3",
    "expect_output": "5",
}


@pytest.mark.anyio
async def test_success_checkpoints_the_build_and_logs_the_image(
    worker: DevOpsWorker,
    workspace: Path,
    pm: Any,
    fake_engine: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_IMAGE", "python:3.11-slim")
    task = assignment(PAYLOAD)
    message = await worker.execute(task, context(pm, task, workspace))
    assert "demo:latest" in message
    assert "smoke test `python -m calc add 2 3` passed" in message
    kw = fake_engine["build_kw"]
    assert kw["build_args"] == {"PYTHON_IMAGE": "python:3.11-slim"}
    assert kw["context"] == workspace / "app"
    assert kw["dockerfile"] == "Dockerfile"
    assert kw["tag"] == "demo:latest"
    assert fake_engine["smoke"][0]["command"] == ["python", "-m", "calc", "add", "2", "3"]
    assert fake_engine["smoke"][0]["image_id"] == IMAGE.image_id
    assert pm.checkpoints == [
        {
            "stage": "built",
            "image_id": IMAGE.image_id,
            "tag": "demo:latest",
            "size": IMAGE.size,
            "build_seconds": pytest.approx(0, abs=5),
        }
    ]
    [art] = pm.artifacts
    assert art["artifact_type"] == "docker_image"
    assert art["location"] == "demo:latest"
    assert art["data"]["image_id"] == IMAGE.image_id
    assert art["data"]["size"] == IMAGE.size
    assert art["data"]["smoke_output"] == "5\n"
    percents = [p for p, _, _ in pm.progress]
    assert percents == sorted(percents), "progress only goes forward"


@pytest.mark.anyio
async def test_resume_skips_the_build_when_the_checkpointed_image_exists(
    worker: DevOpsWorker, workspace: Path, pm: Any, fake_engine: dict[str, Any]
) -> None:
    fake_engine["existing"] = IMAGE
    task = assignment(
        PAYLOAD, checkpoint={"stage": "built", "image_id": IMAGE.image_id, "tag": "demo:latest"}
    )
    message = await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["build"] == 0
    assert "reused the image sha256:abababababab from this task's checkpoint" in message
    assert any("from this task's checkpoint still exists; skipping the build" in m for _, m, _ in pm.progress)
    assert pm.artifacts[0]["data"]["reused"] == "sha256:abababababab from this task's checkpoint"


@pytest.mark.anyio
async def test_an_image_a_dependency_built_with_this_tag_is_reused(
    worker: DevOpsWorker, workspace: Path, pm: Any, fake_engine: dict[str, Any]
) -> None:
    fake_engine["existing"] = IMAGE
    # an artifact as the stub sends it (every field present)
    sent = {"agent_id": "devops-1", "description": "the image", "created_at": "2026-01-01T00:00:00+00:00"}
    other = Artifact(
        artifact_id=1,
        artifact_type="docker_image",
        task_id="build-image",
        location="other:1",
        data={"image_id": "sha256:" + "cd" * 32},
        **sent,
    )
    same = Artifact(
        artifact_id=2,
        artifact_type="docker_image",
        task_id="build-image",
        location="demo:latest",
        data={"image_id": IMAGE.image_id, "build_seconds": 4.2},
        **sent,
    )
    task = assignment(PAYLOAD).model_copy(update={"dependency_artifacts": [other, same]})
    message = await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["build"] == 0
    assert "reused the image sha256:abababababab built by task build-image" in message
    assert fake_engine["smoke"][0]["image_id"] == IMAGE.image_id


@pytest.mark.anyio
async def test_nocache_always_builds(
    worker: DevOpsWorker, workspace: Path, pm: Any, fake_engine: dict[str, Any]
) -> None:
    fake_engine["existing"] = IMAGE
    task = assignment(
        {**PAYLOAD, "nocache": True},
        checkpoint={"stage": "built", "image_id": IMAGE.image_id, "tag": "demo:latest"},
    )
    await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["build"] == 1


@pytest.mark.anyio
async def test_resume_rebuilds_when_the_checkpointed_image_is_gone(
    worker: DevOpsWorker, workspace: Path, pm: Any, fake_engine: dict[str, Any]
) -> None:
    task = assignment(
        PAYLOAD, checkpoint={"stage": "built", "image_id": IMAGE.image_id, "tag": "demo:latest"}
    )
    await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["build"] == 1
    assert any("from this task's checkpoint is gone; building again" in m for _, m, _ in pm.progress)


@pytest.mark.anyio
async def test_no_smoke_command_means_build_only(
    worker: DevOpsWorker, workspace: Path, pm: Any, fake_engine: dict[str, Any]
) -> None:
    task = assignment({"context": "app"})
    message = await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["smoke"] == []
    assert "no smoke test ran" in message
    assert pm.artifacts[0]["data"]["smoke_output"] is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("result", "words"),
    [
        (
            SmokeResult(3, "Traceback: boom\n", False, 0.2),
            "failed with exit code 3; output:\nTraceback: boom",
        ),
        (SmokeResult(0, "6\n", False, 0.2), "exited 0 but its output does not contain '5'; output:\n6"),
        (
            SmokeResult(-1, "still going", True, 120.0),
            "did not finish within 120s; output so far:\nstill going",
        ),
    ],
)
async def test_smoke_failures_are_blockers_with_the_output(
    worker: DevOpsWorker,
    workspace: Path,
    pm: Any,
    fake_engine: dict[str, Any],
    result: SmokeResult,
    words: str,
) -> None:
    fake_engine["smoke_result"] = result
    task = assignment(PAYLOAD)
    with pytest.raises(TaskBlocked) as err:
        await worker.execute(task, context(pm, task, workspace))
    assert words in err.value.description
    assert err.value.severity == "high"
    assert pm.artifacts == []


@pytest.mark.anyio
async def test_build_failure_is_a_blocker_with_the_engine_text(
    worker: DevOpsWorker,
    workspace: Path,
    pm: Any,
    fake_engine: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_build(client: Any, **kw: Any) -> ImageInfo:
        raise BuildFailed(
            "Docker build of demo:latest failed: The command '/bin/sh -c false' returned a non-zero code: 1"
        )

    monkeypatch.setattr(engine, "build", failing_build)
    task = assignment(PAYLOAD)
    with pytest.raises(TaskBlocked, match="returned a non-zero code: 1"):
        await worker.execute(task, context(pm, task, workspace))
    assert fake_engine["smoke"] == []
    assert pm.checkpoints == []


@pytest.mark.anyio
async def test_unreachable_engine_is_a_blocker_saying_so(
    worker: DevOpsWorker, workspace: Path, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    task = assignment(PAYLOAD)
    with pytest.raises(TaskBlocked) as err:
        await worker.execute(task, context(pm, task, workspace))
    text = err.value.description
    assert text.startswith("Docker engine unreachable at unix:///nonexistent.sock: ")
    assert "No such file or directory" in text
    assert err.value.severity == "critical"


def test_permission_denied_names_the_fix() -> None:
    err = engine.unreachable(PermissionError(13, "Permission denied"))
    assert "Permission denied" in str(err)
    assert "socket's group" in str(err)
    assert 'user: "0:0"' in str(err)


# -- build progress throttling ---------------------------------------------------------


@pytest.mark.anyio
async def test_build_output_is_reported_throttled(worker: DevOpsWorker, workspace: Path, pm: Any) -> None:
    import anyio

    state = BuildState()
    ctx = TaskContext(pm, assignment({}), workspace)
    # only the line count or a new step triggers a report here
    progress = BuildProgress(ctx, state, "demo:latest", interval=3600, lines=10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(progress.run)
        for i in range(1, 26):
            state.add(f"Step {i}/25 : line {i}")
        with anyio.fail_after(5):
            await pm.reported.wait()
        await anyio.sleep(0.6)  # more ticks: 25 lines were all there at once -> exactly one report
        tg.cancel_scope.cancel()
    assert len(pm.progress) == 1
    percent, message, _ = pm.progress[0]
    assert message == "build demo:latest: Step 25/25 : line 25"
    assert 60 < percent < 65


@pytest.mark.anyio
async def test_cancel_during_the_smoke_test_removes_its_container(
    worker: DevOpsWorker,
    workspace: Path,
    pm: Any,
    fake_engine: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import anyio

    started, removed = threading.Event(), threading.Event()
    removed_ids: list[str] = []

    def blocking_smoke(client: Any, **kw: Any) -> SmokeResult:
        kw["on_container"]("c0ffee")
        started.set()
        removed.wait(30)  # like container.wait(): returns once the container is gone
        raise engine.Cancelled()

    def remove(client: Any, container_id: str) -> None:
        removed_ids.append(container_id)
        removed.set()

    monkeypatch.setattr(engine, "smoke", blocking_smoke)
    monkeypatch.setattr(engine, "remove_container", remove)
    task = assignment(PAYLOAD)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.execute, task, context(pm, task, workspace))
            await anyio.to_thread.run_sync(started.wait, 10)
            tg.cancel_scope.cancel()
    assert removed_ids == ["c0ffee"]
    assert pm.artifacts == []


@pytest.mark.anyio
async def test_a_build_faster_than_the_first_tick_still_reports_its_last_step(
    workspace: Path, pm: Any
) -> None:
    """Issue 13: a 0.3 s build whose only reported line was ` ---> Running in ...`."""
    state = BuildState()
    progress = BuildProgress(
        TaskContext(pm, assignment({}), workspace), state, "demo:latest", interval=2.0, lines=40
    )
    state.add("Step 1/2 : FROM python:3.11-slim")
    await progress.tick()
    state.add(" ---> 70cf2e589f94")
    state.add("Step 2/2 : COPY greeting.txt /greeting.txt")
    state.add(" ---> Running in ff29247e41ca")
    await progress.tick(final=True)
    await progress.tick(final=True)  # nothing new: nothing sent
    assert [m for _, m, _ in pm.progress] == [
        "build demo:latest: Step 1/2 : FROM python:3.11-slim",
        "build demo:latest: Step 2/2 : COPY greeting.txt /greeting.txt",
    ]


def test_build_lines_and_engine_errors_are_cut() -> None:
    state = BuildState()
    state.add("E" * 20_000)
    assert len(state.snapshot().last_line) == engine.LINE_LIMIT
    assert state.snapshot().last_line.endswith(" characters]")
    assert engine.tail("x" * 10_000, 100).startswith("… [")
    assert len(engine.tail("x" * 10_000, 100)) == 100
