"""A long-poll the official TypeScript SDK cancels on its own timeout, then a task loaded (issue 24
item 7), against a real stub, measured.

    python -m tests.reliability.cancelled_poll [--lease 5] [--timeout-ms 1500]

Starts a stub with `PM_LEASE_SECONDS=lease`; `tests/stub/ts_client/cancel.mjs` registers agent
`ts-1` and calls `request_next_task` (`wait_seconds` 30) with the SDK's `timeout` option, which
gives up, sends `notifications/cancelled` and keeps the HTTP request open. Prints what the SDK
threw, whether the stub still counts the waiter 3 s later (or how soon it stopped), then loads
task `t1` for ts-1's skill and prints who holds it 2 s later and, after the lease had time to
lapse, its state and failed attempts (`expiries`).

Needs Node and `npm ci --prefix tests/stub/ts_client`. Only tools every stub version serves are
called, so running it with an older checkout's sources first on PYTHONPATH gives the "before"
figures. Times are printed, never asserted; tests/stub/test_stub_cancelled_polls.py asserts.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import http_get_json, load_tasks, read_events, start_stub, task

CLIENT = Path(__file__).parents[1] / "stub" / "ts_client"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.cancelled_poll")
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--timeout-ms", type=int, default=1500)
    ns = parser.parse_args(argv)
    found: dict[str, Any] = {"lease_seconds": ns.lease}
    with tempfile.TemporaryDirectory(prefix="cancelled-poll-") as tmp:
        db = Path(tmp) / "board.db"
        stub = start_stub(db, env={"PM_LEASE_SECONDS": str(ns.lease)})
        node = subprocess.Popen(
            ["node", str(CLIENT / "cancel.mjs"), stub.url, "ts-1", "ts", "30", str(ns.timeout_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert node.stdout is not None
            found["sdk"] = json.loads(node.stdout.readline())
            cancelled_at = time.monotonic()

            def waiting() -> int:
                return int(http_get_json(f"{stub.base_url}/healthz")[1]["wakeups"]["waiting"])

            while waiting() and time.monotonic() - cancelled_at < 3:
                time.sleep(0.01)
            found["waiters_after_cancel"] = waiting()
            found["seconds_until_no_waiter"] = (
                None if found["waiters_after_cancel"] else round(time.monotonic() - cancelled_at, 3)
            )
            load_tasks(db, task("t1", "ts"))
            time.sleep(2)  # a measurement window, not a synchronisation
            found["assigned_2s_after_load"] = [
                (e["agent_id"], e["attempt"]) for e in read_events(db, "assigned")
            ]
            time.sleep(ns.lease + 2)
            conn = sqlite3.connect(str(db))
            try:
                row = conn.execute(
                    "SELECT status, holder, expiries FROM tasks WHERE task_id = 't1'"
                ).fetchone()
            finally:
                conn.close()
            found["t1_after_lease"] = {"status": row[0], "holder": row[1], "expiries": row[2]}
        finally:
            if node.stdin is not None:
                node.stdin.close()
            node.wait(timeout=30)
            stub.stop()
    json.dump(found, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
