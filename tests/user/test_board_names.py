"""Issue 25: what `status` and the dashboard say about a task that cannot start yet, against a real stub.

- `status`'s "waiting on" column names the dependencies (as the dashboard does), not a count;
- a todo task that waits on nothing but that no worker online can take is not shown as a
  green "ready": the dashboard's board says so (`no_worker_can_take`), and so does
  `status --watch` (the same snapshot, drawn in the terminal), naming the skills it needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import mcp
import pytest
from rich.console import Console

from pm_agent_stub.dashboard.snapshot import BoardSnapshot
from pm_agent_stub.dashboard.terminal import render
from pm_agent_stub.testing import StubProcess, call_tool, http_get_json, load_tasks, run_cli, start_stub, task


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StubProcess]:
    db = tmp_path / "board.db"
    load_tasks(
        db,
        task("compile", "testing"),
        task("package", "testing", dependencies=["compile"]),
        task("release", "testing", dependencies=["compile", "package"]),
        task("image", "docker"),
    )
    running = start_stub(db)
    yield running
    running.stop()


def register(stub: StubProcess, agent_id: str, skills: list[str]) -> None:
    async def go() -> None:
        async with mcp.Client(stub.url) as client:
            answer = await call_tool(
                client,
                "register_agent",
                {"agent_id": agent_id, "name": agent_id, "role": "testing", "skills": skills},
            )
            assert answer["success"], answer

    anyio.run(go)


def test_status_names_what_each_task_waits_on(stub: StubProcess) -> None:
    shown = run_cli("status", "--url", stub.url, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 3}
    assert "compile" in rows["package"].split("│")[7]
    assert "compile, package" in rows["release"].split("│")[7]
    listed = json.loads(run_cli("status", "--url", stub.url, "--json").stdout)
    by_id = {t["task_id"]: t for t in listed["tasks"]}
    assert by_id["release"]["waiting_on"] == ["compile", "package"]
    assert by_id["compile"]["waiting_on"] == []


def test_a_task_no_worker_online_can_take_is_not_ready(stub: StubProcess) -> None:
    register(stub, "tester-1", ["testing"])
    status, body = http_get_json(f"http://127.0.0.1:{stub.port}/dashboard/api/board", timeout=10)
    assert status == 200, body
    snapshot = BoardSnapshot.model_validate(body)
    cards = {t.task_id: t for c in snapshot.columns for t in c.tasks}
    assert cards["image"].no_worker_can_take  # needs docker: only a testing worker is online
    assert not cards["compile"].no_worker_can_take  # the tester can take it: ready
    assert not cards["package"].no_worker_can_take  # waits on a dependency: said as that
    console = Console(record=True, width=200, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(render(snapshot, console))
    drawn = {
        line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") > 3
    }
    assert "no worker online can take it (needs docker)" in drawn["image"]
    assert "ready" in drawn["compile"]
    assert "waiting on compile" in drawn["package"]


def test_the_dashboard_page_says_so_instead_of_ready(stub: StubProcess) -> None:
    """The same in a real headless Chromium: the card is not a green "ready"."""
    from tests.dashboard.browser import chromium_missing, launch_chromium

    missing = chromium_missing()
    if missing is not None:
        pytest.skip(f"no browser test: {missing}")
    from playwright.sync_api import sync_playwright

    register(stub, "tester-1", ["testing"])
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            page = chromium.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{stub.port}/")
            image = page.wait_for_selector('article.card[data-task-id="image"] .waiting.nobody')
            assert image.inner_text() == "no worker online can take it (needs docker)"
            assert page.query_selector('article.card[data-task-id="image"] .ready') is None
            ready = page.wait_for_selector('article.card[data-task-id="compile"] .ready')
            assert ready.inner_text().startswith("ready")
        finally:
            chromium.close()
