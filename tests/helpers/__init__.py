"""Helpers shared by this repository's suites (`from tests.helpers import REPO_ROOT`).

The stub-process kit itself is public: `pm_agent_stub.testing`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def open_scratch(prefix: str) -> Iterator[Path]:
    """A scratch folder other users may enter (pytest's tmp_path is private to root), removed after.

    For tests that run a process as a non-root user, and for long tests whose numbered
    pytest folders another session on a shared machine might prune.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
