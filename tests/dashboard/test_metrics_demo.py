"""/metrics after a demo run by real worker processes agrees with `status --json` and with the
board's event log, and promtool accepts it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pm_agent_stub.testing import StubProcess, read_events, start_stub, wait_until
from tests.dashboard.demo import demo_workspace, project_file, settled, start_demo_workers
from tests.dashboard.web import Samples, assert_promtool_accepts, http, parse_metrics, value
from tests.integration.workerproc import board


@dataclass
class AfterDemo:
    stub: StubProcess
    project: Path
    exposition: bytes
    samples: Samples
    status: dict[str, Any]


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AfterDemo]:
    base = tmp_path_factory.mktemp("metrics-demo")
    workspace = demo_workspace(base)
    stub = start_stub(base / "board.db", project=project_file(workspace))
    workers = start_demo_workers(stub.url, workspace, base)
    try:
        wait_until(lambda: settled(stub.db), timeout=300, interval=0.5, message="demo run settled")
    finally:
        for w in workers:
            w.terminate()
    try:
        scrape = http(stub.port, "GET", "/metrics")
        assert scrape.status == 200
        yield AfterDemo(
            stub, project_file(workspace), scrape.body, parse_metrics(scrape.text), board(stub.db)
        )
    finally:
        stub.stop()


def test_task_and_worker_gauges_equal_status_json(after_demo: AfterDemo) -> None:
    ps, workers = after_demo.status["project_status"], after_demo.status["workers"]
    for status in ("todo", "in_progress", "blocked", "done"):
        assert value(after_demo.samples, "pm_agent_tasks", status=status) == ps[status], status
    for status in ("working", "idle", "offline"):
        assert value(after_demo.samples, "pm_agent_workers", status=status) == workers[status], status
    assert (ps["done"], ps["blocked"], ps["todo"]) == (7, 1, 2)


def test_ready_tasks_per_skill_signature_equal_the_offerable_tasks_of_status_json(
    after_demo: AfterDemo,
) -> None:
    spec = yaml.safe_load(after_demo.project.read_text())
    signature = {t["id"]: ",".join(sorted({s.lower() for s in t["required_skills"]})) for t in spec["tasks"]}
    ready = Counter(
        signature[t["task_id"]]
        for t in after_demo.status["tasks"]
        if t["status"] == "todo" and t["pending_dependencies"] == 0
    )
    shown = {
        dict(labels)["skills"]: v
        for (name, labels), v in after_demo.samples.items()
        if name == "pm_agent_ready_tasks"
    }
    assert set(shown) == set(signature.values())  # every signature has a series, 0 included
    assert shown == {sig: ready.get(sig, 0) for sig in shown}
    assert shown["docker"] == 1  # build-image: its tests passed, no devops worker ran
    held = {
        dict(labels)["skills"]: v
        for (name, labels), v in after_demo.samples.items()
        if name == "pm_agent_in_progress_tasks"
    }
    assert set(held) == set(shown)
    assert sum(held.values()) == after_demo.status["project_status"]["in_progress"] == 0


def test_counters_equal_the_event_log(after_demo: AfterDemo) -> None:
    events = Counter(e["kind"] for e in read_events(after_demo.stub.db))
    s = after_demo.samples
    assert value(s, "pm_agent_task_assignments_total") == events["assigned"]
    assert value(s, "pm_agent_task_completions_total") == events["completed"] == 7
    assert value(s, "pm_agent_lease_expiries_total") == events["expired"]
    assert value(s, "pm_agent_fencings_total") == events["fenced"]
    assert value(s, "pm_agent_task_releases_total") == events["released"]
    blockers = sum(
        value(s, "pm_agent_blockers_total", severity=x) for x in ("low", "medium", "high", "critical")
    )
    assert blockers == events["blocked"] == 1
    assert value(s, "pm_agent_tasks_loaded_total") == 10
    assert value(s, "pm_agent_task_pickup_latency_seconds_count") == events["assigned"]
    assert value(s, "pm_agent_tool_call_duration_seconds_count", tool="report_task_progress") >= 8
    assert value(s, "pm_agent_long_poll_waiters") == 0


def test_promtool_accepts_the_exposition(after_demo: AfterDemo) -> None:
    assert_promtool_accepts(after_demo.exposition)
