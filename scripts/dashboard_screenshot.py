"""Take docs/dashboard.png: the dashboard of a real demo run, in Debian's headless Chromium.

    .venv/bin/python -m scripts.dashboard_screenshot [--out docs/dashboard.png]   # from the repo root

Runs what `make demo` runs (the stub on the demo project, the documentation, testing and
devops workers as local processes on a copy of examples/) and opens the page. The devops
worker starts once the others are done, and the picture is taken while it runs the smoke
deploy: a task in progress (progress bar, holder, lease countdown), the demo's deliberately
failing suite blocked with the stub's suggestion and the resolve box, the rest done with
their artifacts, the three workers and the event feed. With a Docker engine (set
PYTHON_IMAGE to a local base image); without one the devops tasks end blocked instead.
Needs /usr/bin/chromium and the `playwright` package (never `playwright install`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from pm_agent_stub.testing import start_stub
from tests.dashboard.browser import CHROMIUM, launch_chromium
from tests.integration.workerproc import WorkerProcess, start_worker

ROOT = Path(__file__).resolve().parent.parent
WORKERS = {"documentation": "documentation_worker", "testing": "testing_worker", "devops": "devops_worker"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    p.add_argument("--timeout", type=float, default=180.0)
    ns = p.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dashboard-shot-"))
    workspace = work / "workspace"
    shutil.copytree(
        ROOT / "examples", workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    stub = start_stub(
        work / "board.db", project=workspace / "demo-project" / "project.yaml", env={"PM_LEASE_SECONDS": "30"}
    )
    workers: list[WorkerProcess] = []
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
            page.goto(f"{stub.base_url}/")
            page.wait_for_selector("#conn[data-state=live]")
            env = {"WORKSPACE": str(workspace), "PM_AGENT_URL": stub.url, "POLL_WAIT_SECONDS": "5"}
            if os.environ.get("PYTHON_IMAGE"):
                env["PYTHON_IMAGE"] = os.environ["PYTHON_IMAGE"]

            def start(role: str) -> None:
                workers.append(
                    start_worker(
                        ["-m", WORKERS[role]], work / f"{role}.log", cwd=work, AGENT_ID=f"{role}-demo", **env
                    )
                )

            def counts() -> dict[str, int]:
                return {
                    c: int(page.inner_text(f'[data-column="{c}"] .count') or 0)
                    for c in ("in_progress", "blocked", "todo", "done")
                }

            start("documentation")
            start("testing")
            deadline = time.monotonic() + ns.timeout
            while time.monotonic() < deadline:
                now = counts()
                if now["done"] >= 7 and now["blocked"] == 1 and now["in_progress"] == 0:
                    break
                page.wait_for_timeout(200)
            start("devops")  # builds the image, then runs the smoke deploy: caught while that runs
            reported = (
                "article.card.in_progress .progress:not([aria-valuenow='0'])"  # its first progress report
            )
            while time.monotonic() < deadline and not (
                counts()["done"] >= 8 and page.locator(reported).count()
            ):
                page.wait_for_timeout(25)
            ns.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ns.out), full_page=True)
            print(f"screenshot: {ns.out} (board {counts()})")
            browser.close()
    finally:
        for w in workers:
            w.terminate()
        stub.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
