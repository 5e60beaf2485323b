"""Hostile inputs, end to end (issue 24 items 1 and 2): real worker processes, the real stub,
the fake model endpoint in its hostile modes, a real FIFO and a real never-answering mount.

Each test is the attack first, then what must hold: the worker never hangs, always exits
on SIGTERM, and every limit ends in a blocker (or a counted release) that names its setting.
Figures before/after: docs/reliability.md, from hostile_figures.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hung_mount
import pytest

from pm_agent_stub.testing import StubProcess, read_events, wait_until

from llm_fake_model import FakeModel, Reply, call, huge_answer, trickle, turn
from llm_harness import LiveWorker, agent_env, run_scenario, task_context, task_id

MIB = 1024 * 1024


def reads(n: int, path: str = "big.txt", usage: tuple[int, int] = (100, 20)) -> Reply:
    return turn(*[call("read_file", {"path": path}) for _ in range(n)], usage=usage)


@pytest.fixture
def stuck(workspace: Path) -> Iterator[Path]:
    """`proj/stuck`: a FUSE mount that never answers (skipped where one cannot be made)."""
    why = hung_mount.available()
    if why:
        pytest.skip(why)
    mount = hung_mount.never_answering_mount(workspace / "proj" / "stuck")
    try:
        path = mount.__enter__()
    except OSError as exc:
        pytest.skip(f"cannot mount a FUSE file system here: {exc}")
    try:
        yield path
    finally:
        mount.__exit__(None, None, None)


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_fifo_is_refused_not_opened(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    """Opening a FIFO for reading waits for a writer for ever; the tools refuse it instead."""
    os.mkfifo(workspace / "proj" / "pipe")
    fake_model.script(
        [
            turn(
                call("read_file", {"path": "pipe"}),
                call("write_file", {"path": "pipe", "content": "x"}),
                call("list_dir", {"path": "pipe"}),
                call("list_dir", {"path": "."}),
            ),
            turn(call("finish", {"summary": "The pipe is not a file."})),
        ]
    )
    run = run_scenario("fifo", dialect, fake_model, board, workspace)
    assert run.returncode == 0, run.stderr
    read, write, list_pipe, listing = fake_model.tool_results(1)
    assert read["is_error"]
    assert "'pipe' is a named pipe (FIFO), not a regular file" in read["content"]
    assert write["is_error"]
    assert "only regular files can be written" in write["content"]
    assert list_pipe["is_error"]
    assert "'pipe' is not a folder" in list_pipe["content"]
    assert "pipe (a named pipe (FIFO))" in listing["content"]
    assert task_context(board, task_id("fifo", dialect))["task"]["status"] == "done"


def test_a_tool_that_never_returns_is_a_counted_release_until_the_task_blocks(
    fake_model: FakeModel, board: StubProcess, workspace: Path, stuck: Path, tmp_path: Path
) -> None:
    """A dead mount: each worker in turn gives up after LLM_TOOL_TIMEOUT_SECONDS and exits; the
    releases count, so after PM_MAX_ATTEMPTS (3) the task is blocked, not offered for ever."""
    tid = task_id("never_returns", "openai")
    for i in range(3):
        fake_model.script(
            [turn(call("read_file", {"path": "stuck/x"})), turn(call("finish", {"summary": "?"}))]
        )
        env = agent_env(board, workspace, "openai", fake_model, f"llm-stuck-{i}", f"t-{tid}")
        worker = LiveWorker({**env, "LLM_TOOL_TIMEOUT_SECONDS": "1"}, tmp_path / f"w{i}.log")
        assert worker.wait(90) == 0, worker.result().stderr
        run = worker.result()
        [never] = run.named("tool_never_returned")
        assert never["tool"] == "read_file"
        assert len(fake_model.requests) == 1  # the model was not asked again
    ctx = task_context(board, tid)
    assert ctx["task"]["status"] == "blocked"
    [blocker] = ctx["blockers"]
    assert blocker["description"].startswith("3 failed attempts (lease expiries and counted releases")
    assert "did not return within 1 s (LLM_TOOL_TIMEOUT_SECONDS)" in blocker["description"]
    released = read_events(board.db, "released", tid)
    assert [e["detail"].get("count_attempt") for e in released] == [True, True, True]


def test_sigterm_while_a_tool_is_stuck_exits_and_counts_the_attempt(
    fake_model: FakeModel, board: StubProcess, workspace: Path, stuck: Path, tmp_path: Path
) -> None:
    """A thread stuck in the kernel cannot be cancelled: it is abandoned, and the process exits."""
    tid = task_id("sigterm_stuck", "openai")
    fake_model.script([turn(call("list_dir", {"path": "stuck"}))])
    env = agent_env(board, workspace, "openai", fake_model, "llm-sigterm-stuck", f"t-{tid}")
    worker = LiveWorker(
        {**env, "LLM_TOOL_TIMEOUT_SECONDS": "600", "SHUTDOWN_GRACE_SECONDS": "4"}, tmp_path / "w.log"
    )
    try:
        # The tool call follows the turn; a SIGTERM just before it still meets it (the loop
        # looks at `stopping` only between turns), so no wait for the call itself is needed.
        wait_until(
            lambda: '"model_turn"' in worker.log.read_text(), timeout=60, message="the first model turn"
        )
        exited_after = worker.terminate(grace=60)
    finally:
        run = worker.result()
    assert exited_after is not None, run.stderr  # before: it never exited (SIGKILL needed)
    assert run.returncode == 0, run.stderr
    [released] = read_events(board.db, "released", tid)
    assert released["detail"]["count_attempt"] is True
    assert task_context(board, tid)["task"]["status"] == "todo"  # one attempt of three used


def test_too_many_tool_calls_in_one_turn_block_before_any_runs(
    fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    """300 reads of a 64 KiB file in one turn grew the next request to 19.7 MB; none run now."""
    (workspace / "proj" / "big.txt").write_text("x" * 65535 + "\n")
    fake_model.script([reads(300)], repeat_last=True)
    run = run_scenario("many_calls", "openai", fake_model, board, workspace)
    assert run.returncode == 0, run.stderr
    assert len(fake_model.requests) == 1
    assert not run.named("tool_call")
    [blocker] = task_context(board, task_id("many_calls", "openai"))["blockers"]
    assert blocker["description"].startswith(
        "The model asked for 300 tool calls in one turn; at most 32 are carried out "
        "(LLM_MAX_TOOL_CALLS_PER_TURN=32), so none of them ran. Raise LLM_MAX_TOOL_CALLS_PER_TURN"
    )


def test_the_conversation_is_measured_here_whatever_usage_the_endpoint_reports(
    fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    """An endpoint reporting -1,000,000 input tokens a turn never ran out of tokens; bytes do."""
    (workspace / "proj" / "big.txt").write_text("x" * 65535 + "\n")
    fake_model.script([reads(16, usage=(-1_000_000, 0))], repeat_last=True)
    limits = {"LLM_TOOL_RESULT_MAX_BYTES": "16384", "LLM_MAX_TRANSCRIPT_BYTES": str(MIB)}
    run = run_scenario("transcript", "openai", fake_model, board, workspace, **limits)
    assert run.returncode == 0, run.stderr
    for index in range(1, len(fake_model.requests)):
        results = fake_model.tool_results(index)
        assert len(results) == 16
        assert all(len(r["content"].encode()) <= 16384 for r in results)
        assert results[0]["content"].endswith("bytes (LLM_TOOL_RESULT_MAX_BYTES)]")
    assert max(r.size for r in fake_model.requests) < 1.1 * MIB  # what the cap holds every request to
    ctx = task_context(board, task_id("transcript", "openai"))
    [blocker] = ctx["blockers"]
    assert "measured by the worker (LLM_MAX_TRANSCRIPT_BYTES=1048576)" in blocker["description"]
    assert "Raise LLM_MAX_TRANSCRIPT_BYTES" in blocker["description"]
    assert ctx["task"]["checkpoint"]["llm"]["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
    }  # lies clamped


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_an_answer_that_trickles_in_for_ever_ends_at_the_deadline(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    """One byte every 0.2 s never trips a read timeout; LLM_TIMEOUT_SECONDS is on the whole call."""
    fake_model.script([trickle(0.2)], repeat_last=True)
    run = run_scenario(
        "trickle",
        dialect,
        fake_model,
        board,
        workspace,
        LLM_TIMEOUT_SECONDS="2",
        LLM_RETRY_ATTEMPTS="2",
        LLM_RETRY_MAX_WAIT_SECONDS="0",
    )
    assert run.returncode == 0, run.stderr
    assert len(fake_model.requests) == 2  # the first try and one retry
    [blocker] = task_context(board, task_id("trickle", dialect))["blockers"]
    assert (
        "kept failing after 2 attempts: no complete answer within 2 s (LLM_TIMEOUT_SECONDS)"
        in (blocker["description"])
    )


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_an_answer_past_the_size_cap_is_refused_unread(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    """A 64 MiB answer is cut off at LLM_MAX_RESPONSE_BYTES (before: read whole, 3.3 times its size in RSS)."""
    fake_model.script([huge_answer(64 * MIB)], repeat_last=True)
    run = run_scenario("huge_answer", dialect, fake_model, board, workspace, LLM_MAX_RESPONSE_BYTES=str(MIB))
    assert run.returncode == 0, run.stderr
    assert len(fake_model.requests) == 1  # not retried: it would only be as big again
    [blocker] = task_context(board, task_id("huge_answer", dialect))["blockers"]
    assert "the answer is larger than 1048576 bytes (LLM_MAX_RESPONSE_BYTES)" in blocker["description"]
