"""In-process tests: path safety, retries, settings, both dialects' wire shapes, the agent loop."""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from tenacity import RetryCallState

from llm_worker.agent import AgentLoop
from llm_worker.backends.anthropic import to_messages as anthropic_messages
from llm_worker.backends.errors import ModelError, RetryableModelError, parse_retry_after
from llm_worker.backends.openai import from_response, parse_arguments
from llm_worker.backends.openai import to_messages as openai_messages
from llm_worker.conversation import (
    AssistantTurn,
    Entry,
    ModelTool,
    ModelTurn,
    ToolCall,
    ToolResult,
    ToolResults,
    Usage,
    UserText,
    truncate,
)
from llm_worker.retry import WaitRetryAfter, call_with_retries
from llm_worker.settings import LLMSettings, load_llm_settings
from llm_worker.toolbox import Toolbox
from llm_worker.tools import MODEL_TOOLS
from llm_worker.workspace_files import PathRefused, safe_path, write_regular
from pm_worker import Assignment, Identity, SettingsError, TaskBlocked, TaskContext, TaskReleased
from tests.helpers.recording_pm import RecordingPM

# -- path safety ---------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws" / "proj"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (folder / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (folder / "in").symlink_to(folder / "sub", target_is_directory=True)
    return folder.resolve()


@pytest.mark.parametrize("path", ["a.txt", "sub/b.txt", "sub/../a.txt", ".", "in/c.txt", "./sub/"])
def test_safe_path_accepts_paths_inside(root: Path, path: str) -> None:
    resolved = safe_path(root, path)
    assert resolved == root or root in resolved.parents


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x", "leaves the task folder"),
        ("../../etc/passwd", "leaves the task folder"),
        ("sub/../../x", "leaves the task folder"),
        ("out/x.txt", "leaves the task folder"),
        ("/etc/passwd", "absolute path"),
        ("C:\\Windows\\x", "absolute path"),
        ("~/x", "absolute path"),
        ("", "empty path"),
        ("  ", "empty path"),
        ("a\x00b", "NUL"),
    ],
)
def test_safe_path_refuses_escapes(root: Path, path: str, why: str) -> None:
    with pytest.raises(PathRefused, match=why):
        safe_path(root, path)


def make_task(**fields: Any) -> Assignment:
    return Assignment.model_validate(
        {
            "task_id": "t1",
            "task_name": "Write docs",
            "description": "Describe calc",
            "payload": {"path": "proj"},
            **fields,
        }
    )


def make_ctx(workspace: Path, task: Assignment | None = None) -> tuple[TaskContext, RecordingPM]:
    pm = RecordingPM()
    return TaskContext(cast(Any, pm), task or make_task(), workspace), pm


def settings(**overrides: Any) -> LLMSettings:
    base: dict[str, Any] = {
        "llm_provider": "openai",
        "llm_base_url": "http://127.0.0.1:9/v1",
        "llm_model": "m",
        "llm_retry_max_wait_seconds": 0,
    }
    return LLMSettings(**{**base, **overrides})


async def test_write_refuses_a_symlink_planted_after_the_check(root: Path) -> None:
    target = root / "late.txt"
    target.symlink_to(root.parent.parent / "outside" / "late.txt")
    with pytest.raises(PathRefused, match="symlink"):
        write_regular(root, target, b"x")  # what happens if the link appears between check and open
    assert not (root.parent.parent / "outside" / "late.txt").exists()


async def test_toolbox_tools(root: Path) -> None:
    ctx, pm = make_ctx(root.parent)
    box = Toolbox(ctx, root, settings(), usage_note=lambda: "tokens in 1 / out 2")

    async def run(name: str, **args: Any) -> Any:
        return await box.run(ToolCall("c", name, args, json.dumps(args)))

    assert (
        await run("write_file", path="sub/new/a.md", content="héllo")
    ).content == "wrote 6 bytes to sub/new/a.md"
    assert (root / "sub" / "new" / "a.md").read_text() == "héllo"
    assert box.files_written == ["proj/sub/new/a.md"]
    assert (await run("read_file", path="sub/new/a.md")).content == "héllo"
    listing = await run("list_dir", path=".")
    assert listing.content.splitlines()[1:] == ["in@ (symlink)", "out@ (symlink)", "sub/"]
    assert (await run("read_file", path="sub")).is_error
    assert (await run("read_file", path="nope.txt")).content == "read_file: 'nope.txt' does not exist"
    assert (await run("write_file", path=".", content="x")).is_error
    (root / "bin.dat").write_bytes(b"\x00\x01")
    assert "binary file" in (await run("read_file", path="bin.dat")).content
    (root / "big.txt").write_text("x" * 5000)
    small = Toolbox(ctx, root, settings(llm_read_max_bytes=1024, llm_write_max_bytes=1024))
    big = await small.run(ToolCall("c", "read_file", {"path": "big.txt"}, "{}"))
    assert big.content.endswith("[truncated: showing the first 1024 of 5000 bytes]")
    too_big = await small.run(ToolCall("c", "write_file", {"path": "x", "content": "y" * 2000}, "{}"))
    assert "LLM_WRITE_MAX_BYTES" in too_big.content

    assert (await run("report_progress", percent=40, message="half")).content == "progress recorded: 40%"
    assert pm.progress[-1][:2] == (40.0, "half (tokens in 1 / out 2)")
    assert (
        await run("log_artifact", artifact_type="file", description="d", location="sub/new/a.md")
    ).content == "artifact 1 recorded"
    assert pm.artifacts[-1]["location"] == "proj/sub/new/a.md"
    await run("log_artifact", artifact_type="link", description="d", location="https://example.invalid/x")
    assert pm.artifacts[-1]["location"] == "https://example.invalid/x"
    assert (await run("log_artifact", artifact_type="file", description="d", location="../x")).is_error
    assert (await run("finish", summary="done")).finish == "done"
    blocker = (await run("report_blocker", description="stuck", severity="high")).blocker
    assert blocker is not None
    assert blocker.severity == "high"


def test_tool_specs_are_clean_json_schemas() -> None:
    specs = {s.name: s for s in MODEL_TOOLS}
    assert set(specs) == {
        "list_dir",
        "read_file",
        "write_file",
        "report_progress",
        "report_blocker",
        "log_artifact",
        "finish",
    }
    write = specs["write_file"].schema
    assert write["type"] == "object"
    assert sorted(write["required"]) == ["content", "path"]
    assert write["additionalProperties"] is False
    assert "title" not in write
    assert all("title" not in prop for prop in write["properties"].values())


# -- retries -------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "1"}) == 1.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (parse_retry_after({"retry-after": future}) or 0) <= 31
    assert parse_retry_after({"retry-after": "-5"}) == 0.0


def _state(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=cast(Any, None), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_wait_honours_retry_after_and_caps_it() -> None:
    wait = WaitRetryAfter(cap=10)
    assert wait(_state(RetryableModelError("429", retry_after=1))) == 1
    assert wait(_state(RetryableModelError("429", retry_after=3600))) == 10
    for attempt in range(1, 10):
        assert 0 <= wait(_state(RetryableModelError("503"), attempt)) <= 10


async def test_call_with_retries_retries_named_errors_only() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableModelError("HTTP 503", status=503, retry_after=0)
        return "ok"

    assert await call_with_retries(settings(llm_retry_attempts=5), flaky) == "ok"
    assert len(calls) == 3

    calls.clear()

    async def always_429() -> str:
        calls.append(1)
        raise RetryableModelError("HTTP 429", status=429, retry_after=0)

    with pytest.raises(RetryableModelError):
        await call_with_retries(settings(llm_retry_attempts=3), always_429)
    assert len(calls) == 3  # the stop condition

    calls.clear()

    async def refused() -> str:
        calls.append(1)
        raise ModelError("HTTP 401", status=401)

    with pytest.raises(ModelError):
        await call_with_retries(settings(), refused)
    assert len(calls) == 1


# -- settings ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("LLM_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_errors_are_one_line_naming_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"^ANTHROPIC_API_KEY is not set"):
        load_llm_settings()
    clean_env.setenv("ANTHROPIC_API_KEY", "<your key>")
    with pytest.raises(SettingsError, match="placeholder"):
        load_llm_settings()
    clean_env.setenv("LLM_PROVIDER", "OpenAI")
    with pytest.raises(SettingsError, match=r"^LLM_BASE_URL is not set"):
        load_llm_settings()
    clean_env.setenv("LLM_BASE_URL", "localhost:11434")
    with pytest.raises(SettingsError, match=r"invalid setting LLM_BASE_URL \(got 'localhost:11434'\)"):
        load_llm_settings()
    clean_env.setenv("LLM_BASE_URL", "http://localhost:11434/v1/")
    with pytest.raises(SettingsError, match=r"^LLM_MODEL is not set"):
        load_llm_settings()
    clean_env.setenv("LLM_MODEL", "llama3.1:8b")
    clean_env.setenv("LLM_MAX_STEPS", "0")
    with pytest.raises(SettingsError, match="invalid setting LLM_MAX_STEPS"):
        load_llm_settings()
    clean_env.setenv("LLM_MAX_STEPS", "2")
    loaded = load_llm_settings()
    assert loaded.llm_base_url == "http://localhost:11434/v1"
    assert loaded.model == "llama3.1:8b"
    assert loaded.llm_api_key is None


def test_anthropic_default_model_and_secret_not_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-real-looking")
    clean_env.setenv("ANTHROPIC_BASE_URL", " ")
    loaded = load_llm_settings()
    assert loaded.model == "claude-sonnet-4-5"
    assert loaded.anthropic_base_url is None
    assert "sk-real-looking" not in repr(loaded)


# -- the dialects ----------------------------------------------------------------------

TRANSCRIPT: list[Entry] = [
    UserText("do it"),
    AssistantTurn(
        "looking",
        (
            ToolCall("c1", "list_dir", {"path": "."}, '{"path": "."}'),
            ToolCall("c2", "write_file", None, '{"path": ', error="not valid JSON"),
        ),
    ),
    ToolResults((ToolResult("c1", "list_dir", "a.txt"), ToolResult("c2", "write_file", "bad JSON", True))),
    UserText("go on"),
    AssistantTurn(""),
]


def test_anthropic_wire_shape() -> None:
    msgs = anthropic_messages(TRANSCRIPT)
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[1]["content"][1] == {
        "type": "tool_use",
        "id": "c1",
        "name": "list_dir",
        "input": {"path": "."},
    }
    assert msgs[1]["content"][2]["input"] == {}  # broken arguments replayed as an empty object
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "a.txt", "is_error": False},
        {"type": "tool_result", "tool_use_id": "c2", "content": "bad JSON", "is_error": True},
        {"type": "text", "text": "go on"},  # merged into the same user turn, after the results
    ]
    assert msgs[3]["content"] == [{"type": "text", "text": "(no reply)"}]


def test_openai_wire_shape() -> None:
    msgs = openai_messages("SYS", TRANSCRIPT)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool", "user", "assistant"]
    assert msgs[2]["tool_calls"][1]["function"] == {"name": "write_file", "arguments": '{"path": '}
    assert msgs[3] == {"role": "tool", "tool_call_id": "c1", "content": "a.txt"}
    assert msgs[4]["content"] == "ERROR: bad JSON"
    assert msgs[6] == {"role": "assistant", "content": ""}


def test_openai_argument_parsing() -> None:
    assert parse_arguments('{"a": 1}') == ({"a": 1}, '{"a": 1}', None)
    assert parse_arguments({"a": 1})[0] == {"a": 1}  # some servers send an object
    assert parse_arguments("")[0] == {}
    assert "not valid JSON" in (parse_arguments("{oops")[2] or "")
    assert "must be a JSON object" in (parse_arguments("[1]")[2] or "")
    with pytest.raises(ModelError, match="malformed"):
        from_response({"error": "nope"})
    turn = from_response(
        {
            "choices": [
                {
                    "message": {
                        "content": [{"type": "text", "text": "hi"}],
                        "tool_calls": [{"function": {"name": "finish", "arguments": '{"summary": "s"}'}}],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        }
    )
    assert turn.text == "hi"
    assert turn.tool_calls[0].id == "call_0"
    assert turn.usage == Usage(0, 0)


def test_truncate() -> None:
    assert truncate("abc", 5) == "abc"
    assert truncate("abcdefgh", 3) == "abc… (+5 chars)"


# -- the loop, with a scripted backend -------------------------------------------------


class ScriptedBackend:
    provider = "scripted"
    model = "script-1"
    endpoint = "memory"

    def __init__(self, turns: list[ModelTurn | Exception]) -> None:
        self.turns = turns
        self.seen: list[list[Entry]] = []

    async def check(self) -> None:
        return None

    async def complete(
        self, system: str, transcript: Sequence[Entry], tools: Sequence[ModelTool], max_tokens: int
    ) -> ModelTurn:
        self.seen.append(list(transcript))
        item = self.turns.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        return None


def model_turn(*calls: tuple[str, dict[str, Any]], usage: tuple[int, int] = (10, 5)) -> ModelTurn:
    return ModelTurn(
        "", tuple(ToolCall(f"c{i}", n, a, json.dumps(a)) for i, (n, a) in enumerate(calls)), Usage(*usage)
    )


IDENTITY = Identity(agent_id="llm-1", name="LLM Worker", role="llm", skills=("python",))


async def test_loop_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    task = make_task(attempt=2, checkpoint={"llm": {"steps": 4, "files_written": ["proj/a.md"]}})
    ctx, pm = make_ctx(tmp_path, task)
    backend = ScriptedBackend(
        [
            model_turn(("write_file", {"path": "b.md", "content": "b"})),
            model_turn(("finish", {"summary": "resumed"})),
        ]
    )
    message = await AgentLoop(task, ctx, backend, settings(), IDENTITY).run()
    first = backend.seen[0][0]
    assert isinstance(first, UserText)
    assert "stopped after 4 model turns and wrote: proj/a.md" in first.text
    assert message.startswith(
        "resumed\n\n[llm scripted/script-1: 2 model turns, tokens in 20 / out 10; "
        "files written: proj/a.md, proj/b.md]"
    )
    checkpoints = pm.checkpoints
    assert [cp["llm"]["steps"] for cp in checkpoints] == [1, 2]
    assert checkpoints[-1]["llm"]["attempt"] == 2


async def test_loop_turns_model_errors_into_blockers(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path)
    refused = ScriptedBackend([ModelError("HTTP 401: invalid x-api-key", status=401)])
    with pytest.raises(TaskBlocked, match="refused the call: HTTP 401") as info:
        await AgentLoop(make_task(), ctx, refused, settings(), IDENTITY).run()
    assert info.value.severity == "high"
    busy = ScriptedBackend([RetryableModelError("HTTP 529", status=529, retry_after=0)] * 2)
    with pytest.raises(TaskBlocked, match="kept failing after 2 attempts: HTTP 529"):
        await AgentLoop(make_task(), ctx, busy, settings(llm_retry_attempts=2), IDENTITY).run()


async def test_payload_path_outside_the_workspace_blocks(tmp_path: Path) -> None:
    task = make_task(payload={"path": "../elsewhere"})
    ctx, _ = make_ctx(tmp_path / "ws", task)
    with pytest.raises(TaskBlocked, match="leaves the workspace"):
        await AgentLoop(task, ctx, ScriptedBackend([]), settings(), IDENTITY).run()
    assert not (tmp_path / "elsewhere").exists()


async def test_a_stopping_worker_releases_between_turns_uncounted(tmp_path: Path) -> None:
    ctx, pm = make_ctx(tmp_path)
    backend = ScriptedBackend(
        [model_turn(("list_dir", {"path": "."})), model_turn(("finish", {"summary": "x"}))]
    )
    loop = AgentLoop(make_task(), ctx, backend, settings(), IDENTITY)
    real_checkpoint = ctx.checkpoint

    async def checkpoint_then_stop(data: Any, message: str = "") -> None:
        await real_checkpoint(data, message)
        ctx.stopping = True  # SIGTERM arrives during the first tool round

    ctx.checkpoint = checkpoint_then_stop  # type: ignore[method-assign]
    with pytest.raises(TaskReleased, match="worker stopping after 1 model turns") as info:
        await loop.run()
    assert info.value.count_attempt is False
    assert len(backend.seen) == 1  # no second model call
    assert pm.checkpoints[-1]["llm"]["steps"] == 1
