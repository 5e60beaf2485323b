"""Fixtures for the documentation worker suite: the fixture packages (`pm` and `stub` come
from workers/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The fixture packages are what the worker documents: their own tests and conftest are not this suite's.
collect_ignore = ["fixtures"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace holding a copy of the fixture package at `shapes/`."""
    root = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", root / "shapes")
    return root
