"""What a worker sends fits the protocol's limits and never carries its token (issue 17, items 3 and 4).

The end-to-end cases run a worker against the real stub in memory (`pm_stub`, the public kit).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import read_events
from pm_protocol.limits import MAX_JSON_BYTES, MAX_NAME, MAX_TEXT, json_size
from pm_worker import Assignment, TaskBlocked, TaskContext, TaskReleased, Worker
from pm_worker.dialects.stub import StubDialect
from pm_worker.outgoing import REDACTED, Outgoing, fit_json, fit_text
from pm_worker.testing import StubKit

TOKEN = "tok-9f8e7d6c5b4a39281706"


def test_text_within_the_limit_is_sent_as_it_is() -> None:
    assert fit_text("short") == "short"
    assert fit_text("x" * MAX_TEXT) == "x" * MAX_TEXT


def test_long_text_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    text = "HEAD" + "E" * 20_000 + "TAIL"
    fitted = fit_text(text)
    assert len(fitted) <= MAX_TEXT
    assert fitted.startswith("HEAD")
    assert fitted.endswith("TAIL")
    cut = len(text) - len(fitted.replace(fitted[fitted.index("\n…") : fitted.index("…\n") + 2], ""))
    assert f"[cut {cut:,} characters]" in fitted


def test_json_too_large_or_not_json_becomes_a_small_stand_in() -> None:
    assert fit_json({"a": [1, 2]}, "data") == {"a": [1, 2]}
    big = fit_json({"blob": "x" * MAX_JSON_BYTES}, "the checkpoint")
    assert isinstance(big, dict)
    assert "the checkpoint was not sent" in str(big["omitted"])
    assert f"{MAX_JSON_BYTES:,}" in str(big["omitted"])
    assert "NaN" in str(fit_json({"x": math.nan}, "data"))
    assert "not JSON" in str(fit_json({"path": Path("/tmp")}, "data"))
    assert json_size(big) < 1000


def test_secrets_are_redacted_everywhere_before_cutting() -> None:
    out = Outgoing([TOKEN, None, ""])
    assert out.text(f"Bearer {TOKEN}!") == f"Bearer {REDACTED}!"
    nested = out.json({"env": [f"PM_AGENT_TOKEN={TOKEN}"], TOKEN: 1}, "data")
    assert TOKEN not in json.dumps(nested)
    # A token straddling the cut point must not survive in halves.
    head_room = (MAX_TEXT - len("\n… [cut 99,999 characters] …\n")) * 2 // 3
    text = "a" * (head_room - 5) + TOKEN + "b" * 30_000
    fitted = out.text(text)
    assert TOKEN[:5] not in fitted
    assert TOKEN[-5:] not in fitted
    assert fit_text("n" * 500, MAX_NAME) == out.text("n" * 500, MAX_NAME)
    assert len(out.text("n" * 500, MAX_NAME)) == MAX_NAME


class LoudWorker(Worker):
    """Sends oversized text, JSON and (deliberately) its own token in every field it can."""

    role, name, skills = "loud", "Loud Worker", ("loud",)

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        token = TOKEN  # what the worker was configured with (see the test that sets it)
        mode = task.payload.get("mode")
        if mode == "long-blocker":
            raise TaskBlocked("E" * 20_000)
        if mode == "bad-severity":
            raise TaskBlocked("cannot go on", severity="urgent")
        if mode == "release":
            await ctx.checkpoint({"next": 2})
            raise TaskReleased("stopping at step 2")
        await ctx.progress(10, f"using token {token}")
        await ctx.checkpoint({"blob": "x" * (MAX_JSON_BYTES + 1), "token": token})
        await ctx.artifact(f"log-{token}", "L" * 30_000, location=f"/{token}", data={"env": token})
        raise TaskBlocked(f"{'o' * 15_000} PM_AGENT_TOKEN={token}")


def task(task_id: str, mode: str) -> dict[str, Any]:
    return {"id": task_id, "name": task_id, "required_skills": ["loud"], "payload": {"mode": mode}}


async def test_a_20000_character_blocker_is_cut_and_recorded_once(pm_stub: StubKit) -> None:
    run = await pm_stub.run(LoudWorker, tasks=[task("t1", "long-blocker")])
    assert run.status("t1") == "blocked"
    [blocker] = run.tasks["t1"].blockers
    assert len(blocker.description) <= MAX_TEXT
    assert "characters] …" in blocker.description
    assert "[cut " in blocker.description
    assert run.counters["handled"] == 1
    assert run.counters["report_refused"] == 0
    assert len(read_events(run.db, "assigned", "t1")) == 1


async def test_an_outcome_the_stub_refuses_becomes_a_short_blocker_not_a_loop(tmp_path: Path) -> None:
    class SendsAsGiven(StubDialect):
        """Skips the local argument check, so the real stub is the one that refuses."""

        async def call(self, send: Any, tool: Any, args: Any, *, extra_timeout: float = 0.0) -> Any:
            return tool.read(await send(tool.name, args, extra_timeout=extra_timeout))

    kit = StubKit(tmp_path)
    worker = LoudWorker(kit.settings())
    worker.make_client = lambda: _client(worker, SendsAsGiven())  # type: ignore[method-assign]
    run = await kit.run(worker, tasks=[task("t1", "bad-severity")])
    assert run.status("t1") == "blocked"
    [blocker] = run.tasks["t1"].blockers
    assert "The stub refused this task's blocked report" in blocker.description
    assert "invalid_argument" in blocker.description
    assert "severity" in blocker.description
    assert "not sent" not in blocker.description  # the real stub refused it, not our own check
    assert "cannot go on" in blocker.description
    assert len(blocker.description) < 3000
    assert run.counters["handled"] == 1
    assert run.counters["report_refused"] == 1
    assert len(read_events(run.db, "assigned", "t1")) == 1  # handed out once, never re-run


def _client(worker: Worker, dialect: StubDialect) -> Any:
    from pm_worker import PMClient

    return PMClient(worker.settings, worker.identity, dialect=dialect, connect=worker.connect)


async def test_a_locally_invalid_outcome_also_becomes_a_short_blocker(pm_stub: StubKit) -> None:
    run = await pm_stub.run(LoudWorker, tasks=[task("t1", "bad-severity")])
    assert run.status("t1") == "blocked"
    assert "The stub refused this task's blocked report" in run.tasks["t1"].blockers[0].description
    assert run.counters["handled"] == 1


async def test_oversized_json_and_the_token_never_reach_the_board(pm_stub: StubKit) -> None:
    run = await pm_stub.run(LoudWorker, tasks=[task("t1", "loud")], pm_agent_token=TOKEN)
    ctx = run.tasks["t1"]
    assert ctx.task.status == "blocked"
    everything = ctx.model_dump_json()
    assert TOKEN not in everything
    assert REDACTED in ctx.blockers[0].description
    assert isinstance(ctx.task.checkpoint, dict)
    assert set(ctx.task.checkpoint) == {"omitted"}
    assert "the checkpoint was not sent" in str(ctx.task.checkpoint["omitted"])
    [artifact] = ctx.artifacts
    assert artifact.artifact_type == f"log-{REDACTED}"
    assert len(artifact.description) <= MAX_TEXT
    assert "[cut " in artifact.description
    assert artifact.data == {"env": REDACTED}


async def test_task_released_gives_the_task_back_with_its_checkpoint(pm_stub: StubKit) -> None:
    # Runs until the worker stops by itself after one task (MAX_TASKS=1).
    run = await pm_stub.run(
        LoudWorker, tasks=[task("t1", "release")], until=lambda counts: False, max_tasks=1
    )
    ctx = run.tasks["t1"]
    assert ctx.task.status == "todo"
    assert ctx.task.checkpoint == {"next": 2}
    assert ctx.progress_log[-1].status == "released"
    assert ctx.progress_log[-1].message == "stopping at step 2"
    assert run.counters["released"] == 1
