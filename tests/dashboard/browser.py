"""Debian's headless Chromium under Playwright, for the dashboard tests, bench/dashboard.py and
the README screenshot (`python -m scripts.dashboard_screenshot`).

Playwright only drives the browser: it is pointed at /usr/bin/chromium (the Debian package,
`apt-get install -y chromium`), and `playwright install` (which downloads a browser build) is
never run. `chromium_missing()` says why a browser test cannot run here, for its skip line.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Final

from tests.helpers import REPO_ROOT

CHROMIUM: Final = os.environ.get("PM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium; .ci/run does it)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (make install)"
    return None


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from the Debian binary."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))


SAVED: list[Path] = []  # screenshots taken in this session, listed in the terminal summary (conftest.py)


def artifacts_dir() -> Path:
    """Where screenshots of test runs go (PM_TEST_ARTIFACTS, default .run/test-artifacts/dashboard)."""
    path = Path(os.environ.get("PM_TEST_ARTIFACTS", REPO_ROOT / ".run" / "test-artifacts")) / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG in artifacts_dir(), remembered for the summary line."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SAVED.append(path)
    return path
