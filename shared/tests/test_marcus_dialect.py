"""The Marcus dialect's pure translation, against Marcus 0.3.8's exact answers.

`marcus_answers.json` holds answers recorded from a real Marcus (and the upstream capture
verbatim); tests/marcus/ checks the same mapping against a live server.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from pm_protocol.tools import TOOLS
from pm_worker.dialects.choose import UnknownDialect, dialect_for_tools
from pm_worker.errors import AgentNotRegistered, NotTaskHolder, PMError, TaskAlreadyComplete
from pm_worker.marcus import answers, pacing
from pm_worker.marcus.answers import HeldTask, LeaseLost, ProjectIdRequired
from pm_worker.marcus.payload import PayloadError, extract_payload, missing_payload_message
from pm_worker.marcus.state import LocalState

RECORDED: dict[str, Any] = json.loads((Path(__file__).with_name("marcus_answers.json")).read_text())


def rec(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(json.dumps(RECORDED[name]))
    return value


def with_description(text: str) -> dict[str, Any]:
    answer = rec("request_next_task.task")
    answer["task"]["description"] = text
    return answer


# -- which dialect --------------------------------------------------------------------


def test_marcus_tools_list_is_marcus_and_the_stub_table_is_the_stub() -> None:
    assert dialect_for_tools(RECORDED["tools_list.names"]) == "marcus"
    assert dialect_for_tools(t.name for t in TOOLS) == "stub"


def test_a_server_without_the_pm_tools_or_either_signature_is_refused_with_what_to_set() -> None:
    with pytest.raises(UnknownDialect, match="is PM_AGENT_URL a PM Agent"):
        dialect_for_tools(["echo", "ping"])
    core = ["register_agent", "request_next_task", "report_task_progress", "report_blocker"]
    with pytest.raises(UnknownDialect, match="PM_PROTOCOL=stub or PM_PROTOCOL=marcus"):
        dialect_for_tools(core)
    with pytest.raises(UnknownDialect):
        dialect_for_tools([*core, "heartbeat", "log_decision"])  # half of each: no guess


# -- inputs from the description --------------------------------------------------------


def test_yaml_and_json_blocks_give_the_payload() -> None:
    assert extract_payload("Docs.\n\n```yaml pm-payload\nkind: api\npath: src\n```\n") == {
        "kind": "api",
        "path": "src",
    }
    assert extract_payload('```json pm-payload\n{"steps": 2, "x": [1.5, null, true]}\n```') == {
        "steps": 2,
        "x": [1.5, None, True],
    }
    assert extract_payload("~~~pm-payload\n~~~") == {}
    # other fenced blocks are left alone
    assert extract_payload("```python\nprint(1)\n```\n```pm-payload\na: 1\n```") == {"a": 1}


def test_no_block_is_none_and_the_blocker_text_says_how_to_add_one() -> None:
    assert extract_payload("Write file out/task_1.txt containing the number 1.") is None
    assert extract_payload("```yaml\npath: src\n```") is None  # not labelled pm-payload
    text = missing_payload_message("t1", "testing")
    assert "pm-payload" in text
    assert "docs/workers.md#testing" in text
    assert "t1" in text


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ("```pm-payload\n- a\n- b\n```", "holds a list; it must be a mapping"),
        ('```json pm-payload\n{"a": NaN}\n```', "NaN is not a JSON number"),
        ("```pm-payload\na: .inf\n```", "NaN and infinity"),
        ("```pm-payload\nwhen: 2024-01-01\n```", "when is not a JSON value"),
        ('```json pm-payload\n{"a": 1,}\n```', "not valid JSON"),
        ("```pm-payload\na: [1\n```", "not valid YAML"),
        ("```pm-payload\na: 1\n```\n```pm-payload\nb: 2\n```", "2 pm-payload blocks"),
    ],
)
def test_an_unusable_block_says_what_to_fix(block: str, says: str) -> None:
    with pytest.raises(PayloadError, match=says.replace("[", r"\[")):
        extract_payload(block)


# -- request_next_task -------------------------------------------------------------------


def test_the_captured_task_becomes_an_assignment() -> None:
    offer = answers.task_offer(rec("request_next_task.task"))
    assert not isinstance(offer, HeldTask)
    assert offer.has_task
    task = offer.assignment
    assert task is not None
    assert task.task_id == "693a61bc1c5a4cae86376b310036ce65"
    assert task.task_name == "Probe task 1"
    assert task.description == "Write file out/task_1.txt containing the number 1."
    assert task.instructions.startswith("🔴 MANDATORY WORKFLOW")
    assert task.labels == ["probe1"]
    assert task.required_skills == ["probe1"]
    assert task.payload == {}
    assert task.model_extra == {"payload_missing": True}
    assert task.lease is None
    assert task.checkpoint is None
    assert task.attempt == 1


def test_a_task_with_a_block_carries_its_payload_and_a_bad_block_its_problem() -> None:
    good = answers.task_offer(with_description("Run tests.\n```yaml pm-payload\npath: demo\n```"))
    assert not isinstance(good, HeldTask)
    assert good.assignment is not None
    assert good.assignment.payload == {"path": "demo"}
    assert not good.assignment.model_extra
    bad = answers.task_offer(with_description("```pm-payload\n- x\n```"))
    assert not isinstance(bad, HeldTask)
    assert bad.assignment is not None
    assert "must be a mapping" in (bad.assignment.model_extra or {})["payload_error"]


def test_structured_content_wrapper_is_unwrapped() -> None:
    offer = answers.task_offer({"result": rec("request_next_task.task")})
    assert not isinstance(offer, HeldTask)
    assert offer.has_task


@pytest.mark.parametrize("name", ["request_next_task.none", "request_next_task.none_fleet_run"])
def test_no_task_keeps_marcus_retry_hint(name: str) -> None:
    offer = answers.task_offer(rec(name))
    assert not isinstance(offer, HeldTask)
    assert not offer.has_task
    assert offer.assignment is None
    assert offer.retry_after_seconds == 30
    assert offer.message.startswith("Marcus: ")
    assert "\n" not in offer.message  # the reason, not Marcus's banner for LLM agents


def test_already_have_a_task_names_the_held_task() -> None:
    held = answers.task_offer(rec("request_next_task.already_have"))
    assert held == HeldTask("aea60c70981c46faa1e1264c7b786ca3", "Doc task A", "todo")


def test_an_agent_marcus_forgot_is_told_to_register_again() -> None:
    with pytest.raises(AgentNotRegistered):
        answers.task_offer(rec("request_next_task.unregistered"))


def test_experiment_complete_is_no_task_not_an_exit() -> None:
    offer = answers.task_offer(
        {"success": False, "status": "EXPERIMENT_COMPLETE", "message": "...", "should_exit": True}
    )
    assert not isinstance(offer, HeldTask)
    assert not offer.has_task
    assert offer.retry_after_seconds == 30


def test_any_other_refusal_is_a_pm_error_with_marcus_words() -> None:
    with pytest.raises(PMError, match="Failed to assign task: boom"):
        answers.task_offer({"success": False, "error": "Failed to assign task: boom"})


# -- register, progress, blockers --------------------------------------------------------


def test_register_ok_and_without_project() -> None:
    reg = answers.register_result(
        rec("register_agent.ok"), agent_id="w1", name="W1", role="testing", skills=["testing"]
    )
    assert reg.agent_data.agent_id == "w1"
    assert (reg.model_extra or {})["project_id"] == "p1"
    with pytest.raises(ProjectIdRequired, match="project_id is required"):
        answers.register_result(
            rec("register_agent.no_project"), agent_id="w1", name="W1", role="t", skills=[]
        )


@pytest.mark.parametrize(
    ("status", "ack"),
    [("in_progress", "progress_recorded"), ("completed", "task_completed"), ("blocked", "task_blocked")],
)
def test_progress_ack(status: str, ack: str) -> None:
    result = answers.progress_ack(rec("report_task_progress.ok"), status)
    assert result.acknowledged
    assert result.status == ack
    assert result.lease_expires_at is None


def test_stale_completion_is_a_lost_lease_never_to_retry() -> None:
    with pytest.raises(LeaseLost) as caught:
        answers.progress_ack(rec("report_task_progress.stale_completion"), "completed")
    assert isinstance(caught.value, NotTaskHolder)  # the worker loop already stops work on this
    assert "lease expired" in caught.value.message


def test_not_holder_and_already_complete_refusals() -> None:
    with pytest.raises(TaskAlreadyComplete):
        answers.blocker_result(rec("report_blocker.already_complete"))
    with pytest.raises(NotTaskHolder) as caught:
        answers.progress_ack(
            {"success": False, "status": "not_task_holder", "message": "held by w2"}, "blocked"
        )
    assert not isinstance(caught.value, LeaseLost)


def test_blocker_suggestions_become_one_resolution_paragraph() -> None:
    result = answers.blocker_result(rec("report_blocker.ok"))
    text = result.resolution_suggestion
    assert text.startswith("Root cause: Analysis needed. Steps: 1) Review the blocker description; ")
    assert "Needs: Team lead, Subject matter expert." in text
    assert "Escalation needed." in text
    assert (result.model_extra or {})["suggestions"]["estimated_hours"] == 4
    assert result.blocker_id is None
    assert answers.suggestion_text("  plain words ") == "plain words"
    empty = answers.blocker_result({"success": True, "suggestions": None, "message": "ok"})
    assert "no suggestion" in empty.resolution_suggestion


def test_ping() -> None:
    pong = answers.pong(rec("ping.ok"))
    assert pong.pong
    assert pong.echo == "hi"


# -- artifacts ---------------------------------------------------------------------------


def test_artifacts_round_trip_through_the_file_marcus_writes(tmp_path: Path) -> None:
    args = answers.artifact_arguments(
        task_id="T1",
        agent_id="w1",
        artifact_id=2,
        artifact_type="test_report",
        description="3 passed",
        location="reports/T1.xml",
        data={"passed": 3},
        project_root=tmp_path,
        created_at="now",
    )
    assert args["project_root"] == str(tmp_path)
    assert args["location"] == ".pm-state/marcus/artifacts/T1/002-test_report.json"
    # what Marcus does with them: writes `content` as JSON at project_root/location
    target = tmp_path / args["location"]
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(args["content"], indent=2))
    context = rec("get_task_context.ok")
    context["context"]["artifacts"][0].update(
        location=args["location"], artifact_type="test_report", dependency_task_id="T1"
    )
    [art] = answers.context_artifacts(context, tmp_path)
    assert (art.task_id, art.agent_id, art.artifact_type, art.location) == (
        "T1",
        "w1",
        "test_report",
        "reports/T1.xml",
    )
    assert art.data == {"passed": 3}
    assert art.description == "3 passed"
    assert art.artifact_id == 2


def test_an_artifact_we_cannot_read_back_keeps_what_marcus_says(tmp_path: Path) -> None:
    [art] = answers.context_artifacts(rec("get_task_context.ok"), tmp_path)
    assert art.artifact_type == "api_docs"
    assert art.data is None
    assert art.location == "docs/artifacts/pm-fleet/aea6/api_docs-1.json"
    assert art.task_id == "aea60c70981c46faa1e1264c7b786ca3"
    # never read outside the workspace
    assert answers.read_envelope(tmp_path, "../../etc/passwd") is None


def test_log_artifact_answers() -> None:
    assert answers.artifact_result(rec("log_artifact.ok"), 7).artifact_id == 7
    with pytest.raises(PMError, match="project_root directory does not exist"):
        answers.artifact_result(rec("log_artifact.no_project_root"), 8)
    with pytest.raises(PMError, match="Task nonexistent not found"):
        answers.context_artifacts(rec("get_task_context.missing"), None)


# -- pacing --------------------------------------------------------------------------------


def test_retry_delay_honours_the_hint_with_bounded_jitter() -> None:
    rng = random.Random(7)
    delays = [pacing.retry_delay(30, rng) for _ in range(500)]
    assert min(delays) >= 30
    assert max(delays) <= 36
    assert max(delays) - min(delays) > 3  # spread, so replicas do not ask in lock-step
    assert 30 <= pacing.retry_delay(None, rng) <= 36
    assert 30 <= pacing.retry_delay(0, rng) <= 36
    assert 300 <= pacing.retry_delay(10_000, rng) <= 310
    assert 2 <= pacing.retry_delay(2, rng) <= 2.4


def test_keepalive_and_resume_windows_sit_inside_marcus_shortest_lease() -> None:
    assert pacing.KEEPALIVE_SECONDS * 2 <= pacing.FIRST_LEASE_SECONDS
    assert not pacing.keepalive_due(89)
    assert pacing.keepalive_due(90)
    assert pacing.surely_still_held(100)
    assert not pacing.surely_still_held(170)
    assert not pacing.surely_still_held(-1)


# -- the local store ---------------------------------------------------------------------------


def _assignment(task_id: str = "T1") -> Any:
    offer = answers.task_offer(with_description("```pm-payload\npath: demo\n```"))
    assert not isinstance(offer, HeldTask)
    assert offer.assignment is not None
    return offer.assignment.model_copy(update={"task_id": task_id})


def test_held_task_survives_a_new_process_and_is_let_go(tmp_path: Path) -> None:
    LocalState(tmp_path, "testing/worker 1").hold(_assignment(), now=100.0)
    again = LocalState(tmp_path, "testing/worker 1")  # a restarted container, same AGENT_ID
    held = again.held()
    assert held is not None
    assert held.assignment.task_id == "T1"
    assert held.assignment.payload == {"path": "demo"}
    again.reported("T1", 40.0, now=150.0)
    again.reported("OTHER", 90.0, now=160.0)  # not ours: ignored
    held = again.held()
    assert held is not None
    assert held.progress == 40.0
    assert held.seconds_since_report(now=200.0) == 50.0
    assert LocalState(tmp_path, "another").held() is None
    again.let_go("OTHER")
    assert again.held() is not None
    again.let_go("T1")
    assert again.held() is None
    assert list((tmp_path / "agents").iterdir()) == []


def test_checkpoints_are_per_task_for_whoever_resumes(tmp_path: Path) -> None:
    LocalState(tmp_path, "w1").save_checkpoint("T1", {"written": ["a.md"]}, 30.0, now=5.0)
    cp = LocalState(tmp_path, "w2").checkpoint("T1")
    assert cp is not None
    assert cp.data == {"written": ["a.md"]}
    assert cp.agent_id == "w1"
    assert cp.progress == 30.0
    with pytest.raises(ValueError, match="JSON"):
        LocalState(tmp_path, "w1").save_checkpoint("T1", {"x": float("nan")}, 31.0)
    assert LocalState(tmp_path, "w1").checkpoint("T1") == cp  # the bad one wrote nothing
    LocalState(tmp_path, "w2").drop_checkpoint("T1")
    assert LocalState(tmp_path, "w1").checkpoint("T1") is None


def test_a_torn_or_foreign_file_reads_as_nothing(tmp_path: Path) -> None:
    state = LocalState(tmp_path, "w1")
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "w1.json").write_text('{"task": {"task_id": ')
    assert state.held() is None
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "T1.json").write_text('{"task_id": "T2", "checkpoint": 1}')
    assert state.checkpoint("T1") is None


# -- settings --------------------------------------------------------------------------------


def test_protocol_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from pm_worker.protocol_settings import MissingProjectId, ProtocolSettings

    monkeypatch.setenv("PM_PROTOCOL", " Marcus ")
    monkeypatch.setenv("PM_PROJECT_ID", "fleet")
    monkeypatch.setenv("PM_AGENT_HOST_HEADER", "localhost:4298")
    s = ProtocolSettings()
    assert (s.pm_protocol, s.pm_project_id, s.pm_agent_host_header) == ("marcus", "fleet", "localhost:4298")
    assert s.state_dir(tmp_path) == tmp_path / ".pm-state" / "marcus"
    monkeypatch.setenv("PM_AGENT_HOST_HEADER", "http://localhost:4298/mcp")
    with pytest.raises(ValidationError, match="no scheme, no path"):
        ProtocolSettings()
    monkeypatch.setenv("PM_AGENT_HOST_HEADER", "")
    monkeypatch.setenv("PM_PROTOCOL", "planka")
    with pytest.raises(ValidationError):
        ProtocolSettings()
    assert str(MissingProjectId("http://m:4298/mcp")).startswith("invalid setting PM_PROJECT_ID: required")
