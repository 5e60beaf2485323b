"""`make logs` pipes `docker compose logs -f` through scripts/logview.py: readable on a
terminal, one JSON object a line anywhere else (`make logs | jq`). A real pty decides."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys

from tests.helpers import REPO_ROOT

LOGVIEW = REPO_ROOT / "scripts" / "logview.py"
ENTRY = {
    "agent_id": "testing-3f2a",
    "task_id": "unit-tests",
    "event": "task received",
    "level": "warning",
    "timestamp": "2026-11-29T18:43:41.107437Z",
    "attempt": 2,
    "note": "two words\x1b[2J",
}
LINES = [
    f"testing-worker-1  | {json.dumps(ENTRY)}",
    "compose: container started",
    json.dumps(
        {
            "event": "task failed",
            "level": "error",
            "timestamp": "2026-11-29T18:43:42Z",
            "exception": "Traceback (most recent call last):\nValueError: bad",
        }
    ),
]


def run_on(stdout_is_tty: bool) -> str:
    text = "\n".join(LINES) + "\n"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("LOG_RAW", None)
    if not stdout_is_tty:
        return subprocess.run(
            [sys.executable, str(LOGVIEW)],
            input=text,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=True,
        ).stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(LOGVIEW)], stdin=subprocess.PIPE, stdout=follower, env=env)
    os.close(follower)
    assert proc.stdin is not None
    proc.stdin.write(text.encode())
    proc.stdin.close()
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the pty closes when the process exits
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(leader)
    return out.decode().replace("\r\n", "\n")


def test_on_a_terminal_each_json_line_reads_as_one_line_of_text() -> None:
    out = run_on(stdout_is_tty=True).splitlines()
    assert out[0] == (
        "testing-worker-1  | 18:43:41 warning  task received  agent_id=testing-3f2a "
        "task_id=unit-tests attempt=2 note='two words\\x1b[2J'"
    )
    assert out[1] == "compose: container started"  # not JSON: as it is
    assert out[2] == "18:43:42 error    task failed"
    assert out[3:] == ["    Traceback (most recent call last):", "    ValueError: bad"]


def test_piped_every_line_is_one_json_object_that_jq_reads() -> None:
    out = run_on(stdout_is_tty=False)
    first, compose, bare = (json.loads(line) for line in out.splitlines())
    assert first == {"service": "testing-worker-1", **ENTRY}  # Compose's prefix, as a field
    assert compose == {"event": "compose: container started", "raw": True}
    assert bare == json.loads(LINES[2])  # no prefix: the object as it was
    jq = shutil.which("jq")
    if jq is not None:  # what the README promises: `make logs | jq`
        read = subprocess.run(
            [jq, "-c", 'select(.level == "warning") | [.service, .event]'],
            input=out,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert read.stdout.splitlines() == ['["testing-worker-1","task received"]']
