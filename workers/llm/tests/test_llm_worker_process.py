"""End to end: the real worker process, the real stub, the fake model endpoint (both dialects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pm_agent_stub.testing import StubProcess, free_port

from llm_fake_model import FakeModel, call, http_error, turn
from llm_harness import DIALECTS, TEST_KEY, provider_env, run_scenario, run_worker, task_context, task_id

CALC_DOC = "# calc\n\n- `add(a, b)`: add two numbers.\n"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_completes_a_task_with_workspace_tools(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    fake_model.script(
        [
            turn(call("list_dir", {"path": "."}), text="Let me look at the task folder.", usage=(1000, 50)),
            turn(call("read_file", {"path": "calc.py"}), usage=(1200, 40)),
            turn(
                call("write_file", {"path": "docs/calc.md", "content": CALC_DOC}),
                call("report_progress", {"percent": 80, "message": "docs/calc.md written"}),
                usage=(1500, 200),
            ),
            turn(
                call(
                    "log_artifact",
                    {
                        "artifact_type": "api_docs",
                        "description": "Markdown page for calc",
                        "location": "docs/calc.md",
                        "data": {"functions": 1},
                    },
                ),
                usage=(1700, 60),
            ),
            turn(call("finish", {"summary": "Documented calc.add in docs/calc.md."}), usage=(1800, 30)),
        ]
    )
    run = run_scenario("docs", dialect, fake_model, board, workspace)
    assert run.returncode == 0, run.stderr

    # The file the model wrote, where it asked, nothing else new.
    assert (workspace / "proj" / "docs" / "calc.md").read_text() == CALC_DOC
    assert sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*") if p.is_file()) == [
        "proj/calc.py",
        "proj/docs/calc.md",
    ]

    # What the model saw: its identity and the board's rules, the assignment, real tool results.
    system = fake_model.system_prompt()
    assert "You are an autonomous AI worker connected to PM Agent." in system
    assert f"Agent ID: llm-{task_id('docs', dialect)}" in system
    assert "Role: llm" in system
    assert "code-review" in system
    assert "Ask for at most 32 tool calls in one turn" in system
    first = fake_model.first_user_text()
    assert "Document the calc module" in first
    assert "docs/calc.md describing each function" in first
    assert '"output": "docs/calc.md"' in first
    listing = fake_model.tool_results(1)
    assert listing[0]["is_error"] is False
    assert "calc.py (" in listing[0]["content"]
    assert "def add(a: int, b: int)" in fake_model.tool_results(2)[0]["content"]
    written = fake_model.tool_results(3)
    assert [r["is_error"] for r in written] == [False, False]
    assert written[0]["content"].startswith(f"wrote {len(CALC_DOC)} bytes to docs/calc.md")
    assert len(fake_model.requests) == 5

    # What the board recorded.
    ctx = task_context(board, task_id("docs", dialect))
    assert ctx["task"]["status"] == "done"
    messages = [entry["message"] for entry in ctx["progress_log"]]
    assert any(m.startswith("LLM agent started") for m in messages)
    assert "docs/calc.md written (tokens in 3700 / out 290)" in messages
    assert any(m.startswith("step 3/30: write_file, report_progress") for m in messages)
    completion = ctx["progress_log"][-1]
    assert completion["status"] == "completed"
    assert completion["message"].startswith("Documented calc.add in docs/calc.md.")
    assert "5 model turns, tokens in 7200 / out 380" in completion["message"]
    checkpoint = ctx["task"]["checkpoint"]["llm"]
    assert checkpoint["steps"] == 5
    assert checkpoint["files_written"] == ["proj/docs/calc.md"]
    assert checkpoint["usage"] == {"input_tokens": 7200, "output_tokens": 380}
    [artifact] = ctx["artifacts"]
    assert artifact["artifact_type"] == "api_docs"
    assert artifact["location"] == "proj/docs/calc.md"
    assert artifact["data"] == {"functions": 1}

    # Every model turn logged, with its usage.
    turns = run.named("model_turn")
    assert [t["step"] for t in turns] == [1, 2, 3, 4, 5]
    assert turns[-1]["total_input_tokens"] == 7200
    assert turns[-1]["total_output_tokens"] == 380
    assert TEST_KEY not in run.stderr


@pytest.mark.parametrize("dialect", DIALECTS)
def test_path_escapes_are_refused_and_reported_to_the_model(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    root = (
        workspace.parent
    )  # <tmp>/root: ../../etc/passwd from <tmp>/root/ws/proj lands at <tmp>/root/etc/passwd
    outside = root.parent / "outside"
    outside.mkdir()
    (workspace / "proj" / "link").symlink_to(outside, target_is_directory=True)
    (workspace / "secret.txt").write_text("not for this task")
    fake_model.script(
        [
            turn(call("write_file", {"path": "../../etc/passwd", "content": "pwned::0:0::/:/bin/sh\n"})),
            turn(
                call("write_file", {"path": str(outside / "abs.txt"), "content": "x"}),
                call("write_file", {"path": "link/through-symlink.txt", "content": "x"}),
                call("read_file", {"path": "../secret.txt"}),
            ),
            turn(call("write_file", {"path": "ok.txt", "content": "inside"})),
            turn(call("finish", {"summary": "Wrote ok.txt only."})),
        ]
    )
    run = run_scenario("escape", dialect, fake_model, board, workspace)
    assert run.returncode == 0, run.stderr

    assert not (root / "etc").exists()
    assert list(outside.iterdir()) == []
    assert (workspace / "proj" / "ok.txt").read_text() == "inside"
    [refused] = fake_model.tool_results(1)
    assert refused["is_error"] is True
    assert "'../../etc/passwd' leaves the task folder" in refused["content"]
    round2 = fake_model.tool_results(2)
    assert [r["is_error"] for r in round2] == [True, True, True]
    assert "absolute path" in round2[0]["content"]
    assert "leaves the task folder" in round2[1]["content"]
    assert "leaves the task folder" in round2[2]["content"]
    assert "not for this task" not in round2[2]["content"]
    assert fake_model.tool_results(3) == [
        {"id": fake_model.tool_results(3)[0]["id"], "content": "wrote 6 bytes to ok.txt", "is_error": False}
    ]
    assert len(run.named("path_refused")) == 4
    ctx = task_context(board, task_id("escape", dialect))
    assert ctx["task"]["status"] == "done"
    assert ctx["task"]["checkpoint"]["llm"]["files_written"] == ["proj/ok.txt"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_tool_arguments_go_back_to_the_model(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    broken = (
        call("write_file", raw='{"path": "notes.md", "content": "unterminated')  # invalid JSON
        if dialect == "openai"
        else call("write_file", raw="notes.md")
    )  # not an object
    fake_model.script(
        [
            turn(broken),
            turn(call("write_file", {"path": "notes.md", "text": "wrong field name"})),
            turn(call("report_progress", {"percent": 250, "message": "too far"}), call("no_such_tool", {})),
            turn(call("write_file", {"path": "notes.md", "content": "fixed"})),
            turn(call("finish", {"summary": "Corrected my calls."})),
        ]
    )
    run = run_scenario("malformed", dialect, fake_model, board, workspace)
    assert run.returncode == 0, run.stderr

    [first] = fake_model.tool_results(1)
    assert first["is_error"] is True
    expected = "not valid JSON" if dialect == "openai" else "not a JSON object"
    assert expected in first["content"]
    assert '"content"' in first["content"]
    [second] = fake_model.tool_results(2)
    assert second["is_error"] is True
    assert "content: Field required" in second["content"]
    assert "text: Extra inputs are not permitted" in second["content"]
    third = fake_model.tool_results(3)
    assert "percent: Input should be less than or equal to 100" in third[0]["content"]
    assert "unknown tool 'no_such_tool'" in third[1]["content"]
    assert (workspace / "proj" / "notes.md").read_text() == "fixed"
    assert task_context(board, task_id("malformed", dialect))["task"]["status"] == "done"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_429_is_retried_after_retry_after(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    fake_model.script(
        [
            http_error(429, {"retry-after": "1"}),
            http_error(503),
            turn(call("finish", {"summary": "Done after a rate limit."})),
        ]
    )
    run = run_scenario("ratelimit", dialect, fake_model, board, workspace, LLM_RETRY_MAX_WAIT_SECONDS="2")
    assert run.returncode == 0, run.stderr
    times = [r.at for r in fake_model.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95  # retry-after: 1 honoured
    retries = run.named("model_call_retrying")
    assert [r["status"] for r in retries] == [429, 503]
    assert retries[0]["wait_seconds"] == 1.0
    assert retries[0]["retries_remaining"] == 4
    ctx = task_context(board, task_id("ratelimit", dialect))
    assert ctx["task"]["status"] == "done"
    assert "1 model turns" in ctx["progress_log"][-1]["message"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_step_budget_runs_out_as_a_blocker(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    fake_model.script([turn(call("list_dir", {"path": "."}))], repeat_last=True)  # never finishes
    run = run_scenario("budget", dialect, fake_model, board, workspace, LLM_MAX_STEPS="2")
    assert run.returncode == 0, run.stderr
    assert len(fake_model.requests) == 2
    ctx = task_context(board, task_id("budget", dialect))
    assert ctx["task"]["status"] == "blocked"
    [blocker] = ctx["blockers"]
    assert blocker["description"].startswith(
        "LLM budget ran out: 2 model turns used (LLM_MAX_STEPS=2) without the model calling finish"
    )
    assert "tokens in 200 / out 40" in blocker["description"]
    assert ctx["task"]["checkpoint"]["llm"]["steps"] == 2


@pytest.mark.parametrize("dialect", ["openai"])
def test_token_budget_runs_out_as_a_blocker(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    fake_model.script([turn(call("list_dir", {"path": "."}), usage=(900, 100))], repeat_last=True)
    run = run_scenario("tokens", dialect, fake_model, board, workspace, LLM_MAX_TOKENS_PER_TASK="2500")
    assert run.returncode == 0, run.stderr
    assert len(fake_model.requests) == 3  # 1000, 2000, 3000 tokens: the third turn crosses 2500
    [blocker] = task_context(board, task_id("tokens", dialect))["blockers"]
    assert blocker["description"].startswith(
        "LLM budget ran out: 3000 tokens used (LLM_MAX_TOKENS_PER_TASK=2500)"
    )


@pytest.mark.parametrize("dialect", ["anthropic"])
def test_model_reported_blocker_blocks_the_task(
    dialect: str, fake_model: FakeModel, board: StubProcess, workspace: Path
) -> None:
    fake_model.script(
        [
            turn(text="I cannot do this."),  # no tool call: reminded to use the tools
            turn(
                call(
                    "report_blocker",
                    {"description": "calc.py imports a missing module 'numbers2'", "severity": "high"},
                )
            ),
        ]
    )
    run = run_scenario("blocker", dialect, fake_model, board, workspace)
    assert run.returncode == 0, run.stderr
    assert "had no tool call" in str(fake_model.requests[1].body["messages"][-1])  # reminded to use the tools
    ctx = task_context(board, task_id("blocker", dialect))
    assert ctx["task"]["status"] == "blocked"
    [blocker] = ctx["blockers"]
    assert blocker["severity"] == "high"
    assert blocker["description"].startswith("calc.py imports a missing module 'numbers2'")


# -- start-up failures: one clear line, before the board is touched -------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_missing_anthropic_key_stops_at_start(tmp_path: Path) -> None:
    run = run_worker(
        {
            "LLM_PROVIDER": "anthropic",
            "PM_AGENT_URL": f"127.0.0.1:{free_port()}",
            "WORKSPACE": str(tmp_path / "ws"),
        },
        timeout=60,
    )
    assert run.returncode == 2
    [line] = _lines(run.stderr)
    assert line.startswith("python -m llm_worker: ANTHROPIC_API_KEY is not set")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unreachable_endpoint_stops_at_start(dialect: str, tmp_path: Path, fake_model: FakeModel) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = provider_env(dialect, fake_model)
    env["ANTHROPIC_BASE_URL" if dialect == "anthropic" else "LLM_BASE_URL"] = dead + (
        "" if dialect == "anthropic" else "/v1"
    )
    env.update({"PM_AGENT_URL": f"127.0.0.1:{free_port()}", "WORKSPACE": str(tmp_path / "ws")})
    run = run_worker(env, timeout=60)
    assert run.returncode == 1
    [line] = _lines(run.stderr)
    [event] = run.events
    assert event["event"] == "startup_failed", line
    assert event["error"].startswith("cannot reach ")
    assert ("ANTHROPIC_BASE_URL" if dialect == "anthropic" else "LLM_BASE_URL") in event["error"]
    assert dead in event["error"]
