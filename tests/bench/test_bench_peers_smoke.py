"""bench/peers still works: `python -m bench --smoke --only peers` starts its own Redis and
PostgreSQL, runs our stub and real workers next to SAQ, Celery and procrastinate, and writes
a number into every cell of the table. It checks that the numbers are there and that every
job was done, never what the numbers are (a benchmark never fails on a timing).

Needs Debian's redis-server and postgresql (`apt-get install -y redis-server postgresql`);
without them the bench reports the section skipped and so does this test, saying why.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COLUMNS = {"pm-agent-sqlite", "saq", "celery", "procrastinate"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(400)
def test_peers_smoke_fills_every_cell_of_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "POLL_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "peers", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    peers = json.loads((out / "results.json").read_text())["peers"]
    if "skipped" in peers:
        print(f"bench/peers skipped: {peers['skipped']}")
        pytest.skip(f"bench/peers could not run here: {peers['skipped']}")
    assert "error" not in peers, (peers.get("error"), proc.stderr[-4000:])
    assert peers["errors"] == [], (peers["errors"], proc.stderr[-4000:])
    assert set(peers["columns"]) >= COLUMNS
    ns = [str(n) for n in peers["config"]["ns"]]
    top = ns[0]
    for key, column in peers["columns"].items():
        assert column["rounds"] == 1, key
        for n in ns:
            assert _number(column["drain"][n]["jobs_per_s"]), (key, n)
        for cell in ("coordinator_cpu_ms_per_job", "worker_cpu_ms_per_job", "worker_rss_mib_mean"):
            assert _number(column["drain"][top][cell]), (key, cell)
        pickup = column["pickup"]
        assert pickup["missing"] == 0, key
        assert pickup["latency"]["n"] == peers["config"]["pickup_samples"], key
        assert _number(pickup["latency"]["p50_ms"]), key
        assert _number(pickup["latency"]["p99_ms"]), key
    for key, blocks in peers["blocks"].items():
        for block in blocks:
            for row in block["drains"].values():
                assert row["all_done"], (key, row)
    assert _number(peers["ratios"]["pm-agent-sqlite"][f"drain_jobs_per_s_n{top}_vs_procrastinate"])
    md = (out / "results.md").read_text()
    assert "## 10. Side by side with the queues users know" in md
    assert "| drain jobs/s, N = " in md
