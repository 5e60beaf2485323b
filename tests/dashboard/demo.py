"""The demo board run by the real documentation and testing worker processes, for the
dashboard and metrics tests (the devops tasks wait: build-image ready, smoke-deploy behind it).

Settled means what the demo promises without Docker: seven tasks done, legacy-tests blocked
with its suggestion, nothing in progress.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Final

from tests.helpers import REPO_ROOT
from tests.integration.workerproc import WorkerProcess, board, start_worker

EXAMPLES: Final = REPO_ROOT / "examples"
DONE_WITHOUT_DOCKER: Final = frozenset(
    {"unit-tests", "doctests", "integration-tests", "api-docs", "tutorial", "test-report", "docs-summary"}
)
TASK_IDS: Final = (*sorted(DONE_WITHOUT_DOCKER), "legacy-tests", "build-image", "smoke-deploy")


def demo_workspace(base: Path) -> Path:
    """A fresh copy of examples/ (the workers write docs into it)."""
    workspace = base / "workspace"
    shutil.copytree(EXAMPLES, workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return workspace


def project_file(workspace: Path) -> Path:
    return workspace / "demo-project" / "project.yaml"


def start_demo_workers(url: str, workspace: Path, log_dir: Path, **env: str) -> list[WorkerProcess]:
    """The documentation and testing workers, as `make demo` starts them."""
    return [
        start_worker(
            ["-m", module],
            log_dir / f"{role}.log",
            cwd=workspace.parent,
            PM_AGENT_URL=url,
            WORKSPACE=str(workspace),
            AGENT_ID=f"{role}-demo",
            **env,
        )
        for role, module in (("documentation", "documentation_worker"), ("testing", "testing_worker"))
    ]


def settled(db: Path) -> dict[str, Any] | None:
    """`status --json` of the board once the run is over, else None."""
    now = board(db)
    status = {t: now["by_id"][t]["status"] for t in TASK_IDS}
    done = {t for t, s in status.items() if s == "done"}
    if (
        done == DONE_WITHOUT_DOCKER
        and status["legacy-tests"] == "blocked"
        and now["project_status"]["in_progress"] == 0
    ):
        return now
    return None
