"""The dashboard suite prints where its browser screenshots went (they are test artifacts)."""

from __future__ import annotations

from typing import Any

from tests.dashboard.browser import SAVED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SAVED:
        terminalreporter.write_line(f"dashboard screenshots ({len(SAVED)}): {SAVED[0].parent}")
        for path in SAVED:
            terminalreporter.write_line(f"  {path}")
