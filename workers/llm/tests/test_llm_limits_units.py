"""In-process tests of the limits: abandonable calls, regular files only, result and answer caps,
reported usage, the conversation's measure. The same attacks against real processes are in
test_llm_hostile.py."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from llm_worker.backends.errors import ModelError
from llm_worker.backends.http import ResponseTooLarge, capped_client
from llm_worker.backends.openai import OpenAIBackend, from_response
from llm_worker.blocking import NeverReturned, run_abandonable
from llm_worker.budget import Spent, exhausted, too_many_calls
from llm_worker.conversation import (
    AssistantTurn,
    ToolCall,
    ToolResult,
    ToolResults,
    Usage,
    UserText,
    entry_bytes,
)
from llm_worker.settings import LLMSettings
from llm_worker.toolbox import cap_result
from llm_worker.workspace_files import FileProblem, PathRefused, list_folder, read_regular, write_regular

# -- calls that may never return ----------------------------------------------------------


async def test_a_call_that_never_returns_is_abandoned_and_its_thread_does_not_block_exit() -> None:
    release = threading.Event()
    with pytest.raises(NeverReturned, match=r"stuck did not return within 0\.3 s"):
        await run_abandonable(release.wait, what="stuck", seconds=0.3)
    [thread] = [t for t in threading.enumerate() if t.name == "llm-tool:stuck"]
    assert thread.daemon  # asyncio.run's executor shutdown and interpreter exit do not wait for it
    release.set()
    thread.join(5)


async def test_a_call_returns_its_value_or_its_exception() -> None:
    assert await run_abandonable(lambda: 42, what="x", seconds=5) == 42

    def fails() -> None:
        raise FileProblem("'x' does not exist")

    with pytest.raises(FileProblem, match="does not exist"):
        await run_abandonable(fails, what="x", seconds=5)


async def test_hurry_shortens_the_wait_once() -> None:
    """Stopping: a running call gets `hurry()` seconds more, not its full limit."""
    release = threading.Event()
    with pytest.raises(NeverReturned):
        await run_abandonable(release.wait, what="slow", seconds=60, hurry=lambda: 0.2)
    release.set()


# -- regular files only -----------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = (tmp_path / "proj").resolve()
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    os.mkfifo(folder / "pipe")
    return folder


def test_fifo_sockets_and_folders_are_refused_without_blocking(root: Path) -> None:
    with pytest.raises(FileProblem, match=r"'pipe' is a named pipe \(FIFO\), not a regular file"):
        read_regular(root, root / "pipe", 100)
    with pytest.raises(FileProblem, match="only regular files can be written"):
        write_regular(root, root / "pipe", b"x")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        with pytest.raises(FileProblem, match="'sock' is a socket"):
            read_regular(root, root / "sock", 100)
    (root / "sub").mkdir()
    with pytest.raises(FileProblem, match="is a folder; use list_dir"):
        read_regular(root, root / "sub", 100)
    assert read_regular(root, root / "a.txt", 3) == (b"hel", 5)
    lines, count = list_folder(root, root)
    assert count == 4
    assert lines == ["a.txt (5 bytes)", "pipe (a named pipe (FIFO))", "sock (a socket)", "sub/"]


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)  # as if swapped after safe_path
    with pytest.raises(PathRefused, match="became a symlink after the check"):
        write_regular(root, root / "sub" / "x.txt", b"x")
    with pytest.raises(PathRefused, match="became a symlink after the check"):
        read_regular(root, root / "sub" / "x.txt", 10)
    assert list(outside.iterdir()) == []


def test_writes_replace_regular_files_and_create_folders(root: Path) -> None:
    write_regular(root, root / "a.txt", b"new")
    assert (root / "a.txt").read_bytes() == b"new"
    write_regular(root, root / "deep" / "er" / "b.txt", b"b")
    assert (root / "deep" / "er" / "b.txt").read_bytes() == b"b"


# -- sizes -------------------------------------------------------------------------------


def test_results_are_cut_to_the_byte_cap_on_a_character_boundary() -> None:
    assert cap_result("short", 1024) == "short"
    cut = cap_result("é" * 5000, 1024)
    assert len(cut.encode()) <= 1024
    assert cut.endswith("(LLM_TOOL_RESULT_MAX_BYTES)]")
    assert cut.startswith("é")


def test_reported_usage_is_clamped() -> None:
    assert Usage.reported(-1_000_000, 5) == Usage(0, 5)
    assert Usage.reported("lots", None) == Usage(0, 0)
    assert Usage.reported(True, float("nan")) == Usage(0, 0)
    assert Usage.reported(12.7, 3) == Usage(12, 3)
    turn = from_response(
        {
            "choices": [{"message": {"content": "hi"}}],
            "usage": {"prompt_tokens": -9, "completion_tokens": "x"},
        }
    )
    assert turn.usage == Usage(0, 0)
    assert from_response({"choices": [{"message": {"content": "hi"}}], "usage": "none"}).usage == Usage(0, 0)


def test_the_conversation_is_measured_in_utf8_bytes() -> None:
    assert entry_bytes(UserText("héllo")) == 6
    assert (
        entry_bytes(AssistantTurn("ok", (ToolCall("c1", "read_file", {}, '{"path": "a"}'),)))
        == 2 + 2 + 9 + 13
    )
    assert entry_bytes(ToolResults((ToolResult("c1", "read_file", "x" * 100),))) == 102


def settings(**overrides: Any) -> LLMSettings:
    base: dict[str, Any] = {
        "llm_provider": "openai",
        "llm_base_url": "http://127.0.0.1:9/v1",
        "llm_model": "m",
    }
    return LLMSettings(**{**base, **overrides})


def test_each_limit_names_its_setting() -> None:
    s = settings(llm_max_transcript_bytes=65536)
    assert exhausted(s, Spent()) is None
    over = exhausted(s, Spent(transcript_bytes=70000))
    assert over is not None
    assert "LLM_MAX_TRANSCRIPT_BYTES=65536" in over
    assert "Raise LLM_MAX_TRANSCRIPT_BYTES" in over
    assert too_many_calls(s, 32) is None
    many = too_many_calls(s, 33)
    assert many is not None
    assert "LLM_MAX_TOOL_CALLS_PER_TURN=32" in many


# -- the answer's size ----------------------------------------------------------------------


class Chunks(httpx2.AsyncByteStream):
    """A body that arrives in pieces, as from the network (content=... would be read up front)."""

    def __init__(self, data: bytes, size: int = 16384) -> None:
        self.data = data
        self.size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.data), self.size):
            yield self.data[at : at + self.size]


async def test_an_answer_is_read_up_to_the_cap_only() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, stream=Chunks(b"x" * 200_000))

    async with capped_client(100_000, httpx2.MockTransport(answer)) as client:
        with pytest.raises(ResponseTooLarge, match="larger than 100000 bytes"):
            await client.get("http://model.invalid/v1/models")
    async with capped_client(300_000, httpx2.MockTransport(answer)) as client:
        assert len((await client.get("http://model.invalid/v1/models")).content) == 200_000


async def test_openai_backend_refuses_an_oversized_answer_as_a_model_error() -> None:
    body = json.dumps({"choices": [{"message": {"content": "x" * 100_000}}]}).encode()
    backend = OpenAIBackend(
        settings(llm_max_response_bytes=65536),
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, stream=Chunks(body))),
    )
    try:
        with pytest.raises(ModelError, match="LLM_MAX_RESPONSE_BYTES"):
            await backend.complete("system", [UserText("hi")], [], 16)
    finally:
        await backend.aclose()
