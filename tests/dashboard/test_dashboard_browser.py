"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a real stub and real worker processes.

The demo run is watched from a page opened before any worker starts: the page must follow
the run without a reload, show the blocker's suggestion, and resolve it. Separate stubs check
that board text is never run as markup, that a token hides everything until login, and that
another site's page cannot resolve a blocker with the operator's cookie.
Screenshots go to .run/test-artifacts/dashboard/ (listed at the end of the run).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.testing import StubProcess, load_tasks, read_events, start_stub, task, wait_until
from tests.dashboard.browser import chromium_missing, launch_chromium, screenshot
from tests.dashboard.demo import (
    DONE_WITHOUT_DOCKER,
    TASK_IDS,
    demo_workspace,
    project_file,
    settled,
    start_demo_workers,
)
from tests.integration.workerproc import board

MISSING = chromium_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")

TOKEN = "browser-test-token-93ab1e"
RUN_TIMEOUT = 300.0
PAGE_TIMEOUT_MS = 60_000

# Records, in the page, when each task card first showed each status (without touching the app).
WATCH_CARDS = """
() => {
  window.__seen = {};
  const note = (el) => {
    const key = el.dataset.taskId + ":" + el.dataset.status;
    if (el.matches("article.card") && !(key in window.__seen)) window.__seen[key] = Date.now();
  };
  document.querySelectorAll("article.card").forEach(note);
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 1) {
      if (n.matches("article.card")) note(n);
      n.querySelectorAll && n.querySelectorAll("article.card").forEach(note);
    }
  }).observe(document.body, { childList: true, subtree: true });
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


def new_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return context, page, errors


def card(page: Any, task_id: str) -> Any:
    return page.locator(f'article.card[data-task-id="{task_id}"]')


def column_count(page: Any, status: str) -> str:
    return str(page.inner_text(f'[data-column="{status}"] .count'))


@dataclass
class DemoRun:
    stub: StubProcess
    page: Any
    errors: list[str]
    ids_at_load: set[str]
    waiting_text: str
    final: dict[str, Any]


@pytest.fixture(scope="module")
def demo(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """A page opened on the demo board, then the workers run it to the end while it watches."""
    base = tmp_path_factory.mktemp("browser-demo")
    workspace = demo_workspace(base)
    stub = start_stub(base / "board.db", project=project_file(workspace))
    context, page, errors = new_page(browser)
    workers = []
    try:
        page.goto(f"{stub.base_url}/")
        page.wait_for_selector("#conn[data-state=live]")
        page.wait_for_selector('article.card[data-task-id="docs-summary"]')
        ids_at_load = set(
            page.eval_on_selector_all("article.card", "cards => cards.map(c => c.dataset.taskId)")
        )
        waiting_text = card(page, "build-image").inner_text()
        page.evaluate("window.__marker = 'the same page'")
        page.evaluate(WATCH_CARDS)
        screenshot(page, "demo-1-loaded")
        workers = start_demo_workers(stub.url, workspace, base)
        final = wait_until(
            lambda: settled(stub.db), timeout=RUN_TIMEOUT, interval=0.5, message="demo run settled"
        )
        page.wait_for_function(
            "() => document.querySelector('[data-column=done] .count').textContent === '7'"
        )
        page.wait_for_selector('article.blocker[data-task-id="legacy-tests"]')
        screenshot(page, "demo-2-settled")
        for w in workers:
            w.terminate()
        workers = []
        yield DemoRun(stub, page, errors, ids_at_load, waiting_text, final)
    finally:
        for w in workers:
            w.terminate()
        context.close()
        stub.stop()


def test_the_page_shows_the_demo_board(demo: DemoRun) -> None:
    assert demo.ids_at_load == set(TASK_IDS)
    assert "waiting on" in demo.waiting_text
    assert "unit-tests" in demo.waiting_text


def test_workers_finishing_tasks_change_the_page_without_a_reload(demo: DemoRun) -> None:
    page = demo.page
    assert page.evaluate("window.__marker") == "the same page"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    seen = page.evaluate("window.__seen")
    for task_id in DONE_WITHOUT_DOCKER:  # each moved to done while the page watched
        assert f"{task_id}:done" in seen, task_id
        assert card(page, task_id).get_attribute("data-status") == "done"
    assert "unit-tests:in_progress" in seen or "doctests:in_progress" in seen  # work in flight was shown too
    assert column_count(page, "done") == "7"
    assert column_count(page, "blocked") == "1"
    assert int(page.get_attribute("body", "data-snapshots") or 0) > 3
    kinds = page.eval_on_selector_all("#feed li", "items => items.map(i => i.dataset.kind)")
    assert "completed" in kinds
    assert "blocked" in kinds
    workers = page.inner_text("#workers")
    assert "testing-demo" in workers
    assert "documentation-demo" in workers
    assert card(page, "api-docs").locator("details summary").inner_text().endswith("artifact")
    assert demo.errors == []


def test_a_blockers_suggestion_is_on_the_page(demo: DemoRun) -> None:
    conn = sqlite3.connect(demo.stub.db)
    description, suggestion = conn.execute(
        "SELECT description, resolution_suggestion FROM blockers WHERE task_id = 'legacy-tests'"
    ).fetchone()
    conn.close()
    shown = demo.page.locator('article.blocker[data-task-id="legacy-tests"]')
    assert shown.locator(".suggestion .text").inner_text() == suggestion
    assert "test_legacy_rounds_ties_up" in description
    assert "test_legacy_rounds_ties_up" in shown.locator(".desc").inner_text()


def test_resolving_from_the_page_sends_the_task_back_to_the_queue(demo: DemoRun) -> None:
    page = demo.page
    shown = page.locator('article.blocker[data-task-id="legacy-tests"]')
    shown.locator("textarea").fill("ties round to even on purpose; the legacy expectation was fixed")
    shown.locator("button").click()
    page.wait_for_selector('article.blocker[data-task-id="legacy-tests"]', state="detached")
    page.wait_for_selector('article.card[data-task-id="legacy-tests"][data-status="todo"]')
    screenshot(page, "demo-3-resolved")
    after = board(demo.stub.db)["by_id"]["legacy-tests"]
    assert (after["status"], after["attempt"]) == ("todo", 0)
    (resolved,) = read_events(demo.stub.db, kind="resolved", task_id="legacy-tests")
    assert resolved["detail"]["resolution"].startswith("ties round to even")
    assert page.locator("#no-blockers").is_visible()
    assert page.evaluate("window.__marker") == "the same page"


def test_board_text_is_shown_as_text_never_run(browser: Any, tmp_path: Path) -> None:
    hostile = '<img src=x onerror="window.__pwned=1">'
    db = tmp_path / "xss.db"
    load_tasks(db, task("xss", "html", name=f"<script>window.__pwned=2</script>{hostile}"))
    stub = start_stub(db)
    context, page, _ = new_page(browser)
    try:
        writer = Board(connect(db))  # another process's writes, as a worker's would be
        writer.register_agent("agent-1", f"name {hostile}", f"role {hostile}", ["html", "<b>skill</b>"])
        writer.request_next_task("agent-1")
        writer.log_artifact(
            "agent-1", "xss", f"type {hostile}", f"artifact {hostile}", "javascript:alert(1)", None
        )
        writer.report_blocker(
            "agent-1", "xss", f"description {hostile}\n<iframe src=javascript:alert(1)>", "high"
        )
        writer.close()
        page.goto(f"{stub.base_url}/")
        page.wait_for_selector('article.blocker[data-task-id="xss"]')
        page.locator('article.card[data-task-id="xss"] details summary').click()
        screenshot(page, "hostile-text")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main img, main iframe, main script, main b").count() == 0
        assert page.locator("main a").count() == 0  # no link is made from board text
        assert f"name {hostile}" in page.inner_text("#workers")
        assert "<script>window.__pwned=2</script>" in card(page, "xss").inner_text()
        assert f"description {hostile}" in page.inner_text("#blockers")
        assert "javascript:alert(1)" in card(page, "xss").inner_text()
    finally:
        context.close()
        stub.stop()


def test_with_a_token_the_page_shows_nothing_until_login(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "token.db"
    load_tasks(db, task("secret-task", "ops"))
    stub = start_stub(db, env={"PM_AGENT_TOKEN": TOKEN})
    context, page, _ = new_page(browser)
    try:
        page.goto(f"{stub.base_url}/")
        assert page.url == f"{stub.base_url}/login"
        screenshot(page, "token-1-login")
        assert "secret-task" not in page.content()
        assert page.evaluate("fetch('/dashboard/api/board').then(r => r.status)") == 401
        assert page.evaluate("fetch('/metrics').then(r => r.status)") == 401
        page.fill("#token", "wrong")
        page.click("button[type=submit]")
        assert "That is not the stub" in page.inner_text("form.login")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector('article.card[data-task-id="secret-task"]')
        assert page.url == f"{stub.base_url}/"
        screenshot(page, "token-2-logged-in")
        (cookie,) = context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        assert TOKEN not in cookie["value"]
        assert page.evaluate("document.cookie") == ""  # the page's own scripts cannot read it
        page.click("form.logout button")
        page.wait_for_url(f"{stub.base_url}/login")
        assert page.evaluate("fetch('/dashboard/api/board').then(r => r.status)") == 401
        assert TOKEN not in stub.logs()
    finally:
        context.close()
        stub.stop()


class EvilSite:
    """A page on another port of the same host: same site for cookies, another origin."""

    def __init__(self, target: str) -> None:
        body = {"task_id": "flaky", "resolution": "resolved by another site"}
        pages = {
            "/fetch": f"""<html><body><script>
                fetch("{target}/dashboard/api/resolve", {{method: "POST", mode: "no-cors", credentials: "include",
                  headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(json.dumps(body))}}})
                  .then(() => {{ document.title = "sent"; }}, () => {{ document.title = "sent"; }});
            </script></body></html>""",
            "/form": f"""<html><body><form method="post" action="{target}/dashboard/api/resolve"
                enctype="text/plain"><input name='{{"task_id":"flaky","resolution":"x","pad":"' value='"}}'></form>
                <script>document.forms[0].submit();</script></body></html>""",
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path, "").encode()
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_another_sites_page_cannot_resolve_with_the_operators_cookie(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "csrf.db"
    load_tasks(db, task("flaky", "qa"))
    writer = Board(connect(db))
    writer.register_agent("qa-1", "QA", "qa", ["qa"])
    writer.request_next_task("qa-1")
    writer.report_blocker("qa-1", "flaky", "connection refused", "high")
    writer.close()
    stub = start_stub(db, env={"PM_AGENT_TOKEN": TOKEN})
    evil = EvilSite(stub.base_url)
    context, page, _ = new_page(browser)
    try:
        page.goto(f"{stub.base_url}/login")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector('article.blocker[data-task-id="flaky"]')
        page.goto(f"{evil.url}/fetch")
        page.wait_for_function("() => document.title === 'sent'")
        page.goto(f"{evil.url}/form")
        page.wait_for_url(f"{stub.base_url}/dashboard/api/resolve")
        assert "cross-site request refused" in page.inner_text("body")
        assert board(db)["by_id"]["flaky"]["status"] == "blocked"
        assert stub.logs().count('"event": "dashboard_cross_site_refused"') == 2
        page.goto(f"{stub.base_url}/")  # the operator's own page still can
        shown = page.locator('article.blocker[data-task-id="flaky"]')
        shown.locator("textarea").fill("db restarted")
        shown.locator("button").click()
        page.wait_for_selector('article.blocker[data-task-id="flaky"]', state="detached")
        assert board(db)["by_id"]["flaky"]["status"] == "todo"
    finally:
        context.close()
        evil.close()
        stub.stop()


def test_a_page_past_the_stream_cap_says_why_and_goes_live_once_a_place_frees(
    browser: Any, tmp_path: Path
) -> None:
    """Issue 24 item 3: the stub refuses a stream past PM_DASHBOARD_MAX_STREAMS with 503 and a
    reason; the page shows that reason (EventSource would only have failed silently) and
    retries by itself."""
    db = tmp_path / "cap.db"
    load_tasks(db, task("shown-anyway", "x"))
    stub = start_stub(db, env={"PM_DASHBOARD_MAX_STREAMS": "1"})
    held = socket.create_connection(("127.0.0.1", stub.port), timeout=30)
    held.sendall(f"GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:{stub.port}\r\n\r\n".encode())
    assert b" 200 " in held.recv(4096)
    context, page, errors = new_page(browser)
    try:
        page.goto(f"{stub.base_url}/")
        page.wait_for_function(
            "() => document.getElementById('conn-text').textContent.includes('PM_DASHBOARD_MAX_STREAMS=1')"
        )
        assert page.get_attribute("#conn", "data-state") == "down"
        assert "close a dashboard tab" in page.inner_text("#conn-text")
        page.wait_for_selector('article.card[data-task-id="shown-anyway"]')  # the board as it is, not live
        screenshot(page, "stream-cap-refused")
        held.close()
        page.wait_for_selector("#conn[data-state=live]")  # retried after Retry-After
        page.wait_for_function("() => Number(document.body.dataset.snapshots || 0) >= 1")
        assert not [e for e in errors if "503" not in e], errors  # the refusal itself logs a 503
    finally:
        held.close()
        context.close()
        stub.stop()
