"""Every blocked task keeps its card and resolve box on the dashboard, whatever another task's
blockers do (issue 24 item 4), in a real headless Chromium against a real stub process.

Before, the page listed the newest 100 open blockers of the whole board: one agent adding
blockers to its own task pushed another task's critical blocker, and the only box that could
resolve it, off the page. Now the page has one card per blocked task (worst severity first),
each with a few of its open blockers, how many it has, and one resolve form.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.testing import load_tasks, start_stub, task
from tests.dashboard.browser import chromium_missing, launch_chromium, screenshot
from tests.integration.workerproc import board

MISSING = chromium_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")

SPAM = 300  # open blockers on one task, three times what the page used to list in all


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


def test_one_tasks_flood_of_blockers_leaves_every_other_blocked_task_on_the_page(
    browser: Any, tmp_path: Path
) -> None:
    db = tmp_path / "blockers.db"
    load_tasks(db, task("victim", "v"), task("spam", "s"), task("third", "t"))
    caps = {"PM_MAX_OPEN_BLOCKERS_PER_TASK": str(SPAM)}
    stub = start_stub(db, env=caps)
    writer = Board(connect(db), max_open_blockers_per_task=SPAM)  # another process's writes, as a worker's
    try:
        for agent, skill in (("va", "v"), ("sa", "s"), ("ta", "t")):
            writer.register_agent(agent, agent, "r", [skill])
            writer.request_next_task(agent)
        writer.report_blocker("va", "victim", "the database is gone", "critical")
        writer.report_blocker("ta", "third", "a flaky test", "medium")
        for i in range(SPAM):  # the newest blockers on the board, all of one task
            writer.report_blocker("sa", "spam", f"spam {i}", "low")
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{stub.base_url}/")
        victim = page.locator('article.blocker[data-task-id="victim"]')
        victim.wait_for()
        cards = page.locator("#blockers article.blocker")
        assert [cards.nth(i).get_attribute("data-task-id") for i in range(cards.count())] == [
            "victim",
            "third",
            "spam",
        ]
        spam = page.locator('article.blocker[data-task-id="spam"]')
        assert spam.locator(".entry").count() == 3
        assert f"{SPAM} open blockers" in spam.inner_text()
        assert f"+ {SPAM - 3} more open blockers not shown" in spam.inner_text()
        assert "Resolve all 300 and requeue" in spam.inner_text()
        assert page.inner_text("#blocker-count") == str(SPAM + 2)
        assert "the database is gone" in victim.inner_text()
        screenshot(page, "blockers-flood")
        victim.locator("textarea").fill("restored the database")
        victim.locator("button").click()
        victim.wait_for(state="detached")
        state = board(db)["by_id"]
        assert (state["victim"]["status"], state["spam"]["status"], state["third"]["status"]) == (
            "todo",
            "blocked",
            "blocked",
        )
        assert page.locator('article.blocker[data-task-id="third"]').count() == 1
        context.close()
    finally:
        writer.close()
        stub.stop()
