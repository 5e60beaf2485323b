"""Helpers shared by this repository's suites (`from tests.helpers import REPO_ROOT`).

The stub-process kit itself is public: `pm_agent_stub.testing`.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
