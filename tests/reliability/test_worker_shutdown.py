"""A worker stopped during its long-poll leaves nothing behind on the stub.

The worker abandons its `request_next_task(wait_seconds=N)` when SIGTERM comes. If the stub
kept that call waiting, a task arriving within the N seconds would be assigned to an agent
that no longer exists and sit leased until the lease ran out. Proven with a real stub and
a real step worker: the task loaded right after the worker exits stays in the queue for the
whole window the abandoned long-poll would have covered, and a live agent then gets it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.testing import load_tasks, start_stub, wait_until
from tests.helpers import REPO_ROOT
from tests.reliability.boardcheck import rows

POLL_WAIT = 4.0


def test_abandoned_long_poll_assigns_nothing_to_the_stopped_worker(tmp_path: Path) -> None:
    stub = start_stub(tmp_path / "board.db", timeout=60)
    skill = f"orphan-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_"))}
    env.update(
        PM_AGENT_URL=stub.url,
        AGENT_ID="long-poller",
        AGENT_SKILLS=skill,
        POLL_WAIT_SECONDS=str(POLL_WAIT),
        WORKSPACE=str(tmp_path / "ws"),
        LOG_FORMAT="json",
        HEALTH_DIR=str(tmp_path / "health"),
    )
    log = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "examples" / "step_worker.py")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )

        def polling() -> bool:
            # request_next_task refreshes last_seen: once it moved past registration, the long-poll is in.
            found = rows(
                stub.db, "SELECT registered_at, last_seen FROM agents WHERE agent_id = 'long-poller'"
            )
            return bool(found) and found[0]["last_seen"] > found[0]["registered_at"]

        wait_until(polling, timeout=60, message="the worker's long-poll")
        polled_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
        load_tasks(
            stub.db, {"id": "late-task", "name": "Arrives after the worker left", "required_skills": [skill]}
        )

        # For as long as the abandoned long-poll could have lasted (plus a margin), nobody takes it.
        deadline = polled_at + POLL_WAIT + 1.0
        while time.monotonic() < deadline:
            status = rows(stub.db, "SELECT status, holder FROM tasks WHERE task_id = 'late-task'")[0]
            assert status == {"status": "todo", "holder": None}, (status, log.read_text())
            time.sleep(0.05)
        board = Board(connect(stub.db))
        board.register_agent("live-agent", "Live", "steps", [skill])
        assert board.request_next_task("live-agent").wire()["assignment"]["task_id"] == "late-task"
        board.conn.close()
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        stub.stop()
