"""The Marcus suite (`make test-marcus`, marker `marcus`): a real Marcus 0.3.8 per test.

Skipped, with the reason, when the upstream copy is missing (MARCUS_SOURCE or
../shared/upstream/marcus) or its venv cannot be built (no Python 3.11, no registry).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.marcus.host import MarcusProcess, ensure_venv, marcus_source, start_marcus


@pytest.fixture(scope="session")
def marcus_python() -> Path:
    source = marcus_source()
    if not (source / "requirements.txt").exists():
        pytest.skip(f"no Marcus source at {source} (set MARCUS_SOURCE to an unmodified Marcus 0.3.8 copy)")
    try:
        return ensure_venv(source)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        pytest.skip(f"cannot build Marcus's venv: {exc}")


@pytest.fixture
def marcus(tmp_path: Path, marcus_python: Path) -> Iterator[MarcusProcess]:
    """A fresh Marcus on a free loopback port with an empty SQLite board."""
    server = start_marcus(tmp_path / "marcus-run", python=marcus_python)
    try:
        yield server
    finally:
        server.stop()
