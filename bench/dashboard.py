"""8. The dashboard and /metrics: what an open page costs the stub, how soon it shows a change,
and how long a scrape takes on a big board.

- CPU: one stub, `workers` step-worker processes kept busy (tasks of `steps` checkpointed steps
  of `step_seconds` each, so every worker commits several times a second). Stub CPU (% of one
  core) over equal windows, in this order on the same run: no page; one Chromium page on the
  live stream (server-sent events); no page but a client polling `/dashboard/api/board`
  once a second (what a short-poll page would cost); no page again.
- Latency: while the page is open, a MutationObserver in the page notes when each task's card
  first shows `done`; the time from the task's `completed` event (its commit, from the board's
  event log) to that moment, over every completion in the window (both clocks are this
  machine's wall clock).
- Scrape: a separate stub on a board of `scrape_tasks` tasks (30 skill signatures, a third
  waiting on a dependency, 100 in progress, a fifth done), `GET /metrics` and
  `GET /dashboard/api/board` timed `scrape_samples` times each, one at a time.

Needs /usr/bin/chromium and playwright for the first two; the scrape runs anywhere.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench._harness import (
    CpuMeter,
    Loader,
    MachineMeter,
    log,
    reader,
    scalar,
    start_stub,
    start_workers,
    step_tasks,
    summary_ms,
    wait_for,
    wait_registered,
)
from tests.dashboard.browser import chromium_missing, launch_chromium

WATCH_DONE = """
() => {
  window.__doneAt = {};
  const note = (el) => {
    if (el.matches && el.matches("article.card[data-status=done]") && !(el.dataset.taskId in window.__doneAt))
      window.__doneAt[el.dataset.taskId] = Date.now();
  };
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 1) {
      note(n);
      if (n.querySelectorAll) n.querySelectorAll("article.card[data-status=done]").forEach(note);
    }
  }).observe(document.body, { childList: true, subtree: true });
}
"""


class Poller:
    """GET /dashboard/api/board once a second in a thread (a short-poll page, without the page)."""

    def __init__(self, url: str, period: float = 1.0) -> None:
        self.url, self.period = url, period
        self._stop = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with urllib.request.urlopen(self.url, timeout=10) as resp:
                resp.read()
            self.requests += 1
            self._stop.wait(self.period)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def _snapshot_build_ms(base_url: str) -> float | None:
    """Mean time the stub took per dashboard snapshot so far (its own histogram)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    values = {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("pm_agent_dashboard_snapshot_seconds")
    }
    count = values.get("pm_agent_dashboard_snapshot_seconds_count", 0)
    return round(1000 * values["pm_agent_dashboard_snapshot_seconds_sum"] / count, 2) if count else None


def _completed_at(db: Path) -> dict[str, float]:
    with reader(db) as conn:
        return {
            r["task_id"]: r["at"]
            for r in conn.execute("SELECT task_id, at FROM events WHERE kind = 'completed'")
        }


def _live(
    workdir: Path, *, workers: int, tasks: int, steps: int, step_seconds: float, window: float
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    stub = start_stub(workdir / "dash-live")
    loader = Loader(stub.db)
    fleet = start_workers(stub, workers, workdir / "dash-live", prefix="dw", poll_wait=5.0)
    cpu: dict[str, float] = {}
    busy: dict[str, float] = {}
    completions: dict[str, int] = {}
    try:
        loader.load(step_tasks([f"d{i:05d}" for i in range(tasks)], steps=steps, step_seconds=step_seconds))
        registered = wait_registered(stub, fleet, 60 + 2.0 * workers)
        wait_for(
            lambda: (
                (scalar(stub.db, "SELECT count(*) FROM tasks WHERE status = 'in_progress'") or 0) >= workers
            ),
            60,
            0.2,
        )

        def measure(name: str, extra: Any = None) -> None:
            done0 = scalar(stub.db, "SELECT count(*) FROM tasks WHERE status = 'done'") or 0
            with MachineMeter() as machine, CpuMeter([stub.proc.pid]) as meter:
                if extra is not None:
                    extra()
                else:
                    time.sleep(window)
            cpu[name] = round(meter.percent, 2)
            busy[name] = round(machine.busy_pct, 1)
            completions[name] = (
                scalar(stub.db, "SELECT count(*) FROM tasks WHERE status = 'done'") or 0
            ) - done0
            log(f"dashboard {name}: stub {cpu[name]} % of a core, {completions[name]} completions")

        measure("no_page")
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{stub.base_url}/")
            page.wait_for_selector("#conn[data-state=live]", timeout=60_000)
            page.evaluate(WATCH_DONE)
            opened = time.time()
            time.sleep(1.0)
            measure("sse_page_open")
            seen: dict[str, float] = page.evaluate("window.__doneAt")
            build = _snapshot_build_ms(stub.base_url)
            snapshots = int(page.get_attribute("body", "data-snapshots") or 0)
            browser.close()
        with Poller(f"{stub.base_url}/dashboard/api/board") as poller:
            time.sleep(1.0)
            measure("poll_1s_no_page")
        measure("no_page_again")
        done_at = _completed_at(stub.db)
        delays = [seen[t] / 1000.0 - done_at[t] for t in seen if t in done_at and done_at[t] > opened]
        return {
            "workers": workers,
            "registered": registered,
            "task": {"steps": steps, "step_seconds": step_seconds},
            "window_s": window,
            "stub_cpu_pct": cpu,
            "machine_busy_pct": busy,
            "completions": completions,
            "page_snapshots": snapshots,
            "snapshot_build_mean_ms": build,
            "poll_requests": poller.requests,
            "completion_to_page": summary_ms(delays),
        }
    finally:
        fleet.stop()
        loader.close()
        stub.stop()


def _big_board(db: Path, n: int) -> None:
    """n tasks over 30 skill signatures; a third wait on another; 100 held; a fifth done."""
    from pm_agent_stub.board import Board
    from pm_agent_stub.db import connect
    from pm_agent_stub.project_file import ProjectSpec

    tasks = []
    for i in range(n):
        t: dict[str, Any] = {
            "id": f"b{i:06d}",
            "name": f"big {i}",
            "required_skills": [f"s{i % 30}", "common"],
        }
        if i % 3 == 2:
            t["dependencies"] = [f"b{i - 1:06d}"]
        tasks.append(t)
    board = Board(connect(db), lease_seconds=3600)
    board.load_project(ProjectSpec.model_validate({"project": "big", "tasks": tasks}), "big")
    skills = [f"s{k}" for k in range(30)] + ["common"]
    board.register_agent("finisher", "Finisher", "bench", skills)
    for _ in range(n // 5):
        offer = board.request_next_task("finisher")
        if not offer.has_task or offer.assignment is None:
            break
        board.report_task_progress("finisher", offer.assignment.task_id, "completed", 100, "ok")
    for k in range(100):
        board.register_agent(f"holder-{k}", "Holder", "bench", skills)
        board.request_next_task(f"holder-{k}")
    board.close()


def _timed_get(url: str, samples: int) -> tuple[dict[str, Any], int]:
    seconds, size = [], 0
    for _ in range(samples):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            size = len(resp.read())
        seconds.append(time.perf_counter() - t0)
    return summary_ms(seconds), size


def _scrape(workdir: Path, *, tasks: int, samples: int) -> dict[str, Any]:
    folder = workdir / "dash-scrape"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _big_board(folder / "board.db", tasks)
    built = time.monotonic() - t0
    stub = start_stub(folder, env={"PM_LEASE_SECONDS": "3600"})
    try:
        _timed_get(f"{stub.base_url}/metrics", 2)  # warm (imports, first plan)
        metrics, metrics_bytes = _timed_get(f"{stub.base_url}/metrics", samples)
        board, board_bytes = _timed_get(f"{stub.base_url}/dashboard/api/board", samples)
        counts = {r[0]: r[1] for r in _rows(stub.db, "SELECT status, count(*) FROM tasks GROUP BY status")}
    finally:
        stub.stop()
    log(f"scrape on {tasks} tasks: /metrics p50 {metrics['p50_ms']} ms, board p50 {board['p50_ms']} ms")
    return {
        "tasks": tasks,
        "board_by_status": counts,
        "board_built_s": round(built, 1),
        "metrics": metrics,
        "metrics_bytes": metrics_bytes,
        "board_snapshot": board,
        "board_bytes": board_bytes,
    }


def _rows(db: Path, sql: str) -> list[Any]:
    with reader(db) as conn:
        return conn.execute(sql).fetchall()


def run(
    workdir: Path,
    *,
    workers: int,
    tasks: int,
    steps: int,
    step_seconds: float,
    window: float,
    scrape_tasks: int,
    scrape_samples: int,
) -> dict[str, Any]:
    result: dict[str, Any] = {"scrape": _scrape(workdir, tasks=scrape_tasks, samples=scrape_samples)}
    missing = chromium_missing()
    if missing is not None:
        result["live"] = {"skipped": missing}
    else:
        result["live"] = _live(
            workdir, workers=workers, tasks=tasks, steps=steps, step_seconds=step_seconds, window=window
        )
    return result
