"""A task's command cannot get the stub's token onto the board (issue 17 item 4), with real processes.

The stub (requiring a token) and worker processes run for real over HTTP; each worker runs
a task whose command, a child of the worker, tries every way to the token: the worker's
/proc/<ppid>/environ, its own inherited environment, and the token file itself, printing all
of it into the task's blocker. The worker runs as a non-root user (we may be root here, and
root reads any /proc file), so the kernel's /proc permissions apply as in a container.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import StubProcess, load_tasks, start_stub, wait_until
from tests.helpers import open_scratch

TOKEN = "tok-s3cr3t-5f0c1e9a7b2d"
COMMAND_WORKER = Path(__file__).with_name("command_worker.py")
NOBODY = 65534


def as_worker_user() -> list[str]:
    """The command prefix that runs a process as a non-root user ([] when we are not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot start the worker as a non-root user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def root() -> Iterator[Path]:
    """A scratch folder the non-root worker may use (pytest's tmp_path is private to root)."""
    with open_scratch("pm-token-") as path:
        yield path


def probe_argv(token_file: Path | None) -> list[str]:
    script = (
        'echo "== parent environ:"; tr "\\000" "\\n" < /proc/$PPID/environ 2>&1; '
        'echo "== own environment:"; env; '
        'if [ -n "$1" ]; then echo "== token file:"; cat "$1" 2>&1; fi'
    )
    return ["/bin/sh", "-c", script, "probe", str(token_file or "")]


def start_worker(stub: StubProcess, root: Path, skill: str, **env: str) -> subprocess.Popen[bytes]:
    home = root / skill
    for sub in ("ws", "health"):
        (home / sub).mkdir(parents=True)
        (home / sub).chmod(0o777)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_"))}
    base.update(
        {
            "PM_AGENT_URL": stub.url,
            "AGENT_ID": f"secrecy-{skill}",
            "AGENT_SKILLS": skill,
            "WORKSPACE": str(home / "ws"),
            "HEALTH_DIR": str(home / "health"),
            "MAX_TASKS": "1",
            "LOG_FORMAT": "json",
            "POLL_WAIT_SECONDS": "2",
            "RECONNECT_GIVE_UP_SECONDS": "60",
            **env,
        }
    )
    log = (root / f"{skill}.log").open("wb")
    try:
        return subprocess.Popen(
            [*as_worker_user(), sys.executable, str(COMMAND_WORKER)],
            env=base,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    finally:
        log.close()


def board_dump(db: Path) -> str:
    conn = sqlite3.connect(str(db))
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def blocker_text(db: Path, task_id: str) -> str:
    conn = sqlite3.connect(str(db))
    try:
        rows = conn.execute("SELECT description FROM blockers WHERE task_id = ?", (task_id,)).fetchall()
    finally:
        conn.close()
    return "\n".join(r[0] for r in rows)


def test_a_tasks_command_cannot_put_the_token_on_the_board(root: Path) -> None:
    prefix = as_worker_user()  # skips before starting anything if it cannot run as non-root
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)  # readable by the worker's user, so also by its children
    db = root / "board.db"
    load_tasks(
        db,
        {
            "id": "via-env",
            "name": "probe",
            "required_skills": ["env-token"],
            "payload": {"argv": probe_argv(None)},
        },
        {
            "id": "via-file",
            "name": "probe",
            "required_skills": ["file-token"],
            "payload": {"argv": probe_argv(token_file)},
        },
    )
    stub = start_stub(db, env={"PM_AGENT_TOKEN": TOKEN})
    workers = []
    try:
        workers.append(start_worker(stub, root, "env-token", PM_AGENT_TOKEN=TOKEN))
        workers.append(start_worker(stub, root, "file-token", PM_AGENT_TOKEN_FILE=str(token_file)))
        for proc in workers:
            assert proc.wait(timeout=120) == 0, (root / "env-token.log").read_text()[-3000:] + (
                root / "file-token.log"
            ).read_text()[-3000:]
        wait_until(
            lambda: blocker_text(db, "via-env") and blocker_text(db, "via-file"),
            30,
            message="both probes reported",
        )
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stub.stop()

    via_env, via_file = blocker_text(db, "via-env"), blocker_text(db, "via-file")
    if prefix:  # as non-root, the worker's /proc files are closed to its children
        assert "Permission denied" in via_env.split("== own environment:")[0], via_env
    assert "PM_AGENT_TOKEN" not in via_env.split("== own environment:")[1]  # not inherited
    assert "PM_AGENT_TOKEN" not in via_file
    assert "== token file:\n[redacted]" in via_file  # the file was readable: the report was redacted
    logs = [(root / f"{skill}.log").read_text() for skill in ("env-token", "file-token")]
    assert "[redacted]" in logs[1]  # the blocker is logged as sent
    for text in (via_env, via_file, board_dump(db), *logs):
        assert TOKEN not in text
        assert TOKEN[4:] not in text
