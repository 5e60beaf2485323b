"""The benchmark harness still works: `python -m bench --smoke` runs every section and writes
numbers. It checks that numbers are there, never what they are (a benchmark never fails on
a timing)."""

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
SECTIONS = (
    "floor",
    "drain",
    "pickup",
    "recovery",
    "idle",
    "crowd",
    "lockwait",
    "scaling",
    "profile",
    "dashboard",
)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(600)
def test_bench_smoke_writes_every_section_with_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "POLL_"))}
    proc = subprocess.run(
        # bench/peers has its own smoke test (test_bench_peers_smoke.py)
        [sys.executable, "-m", "bench", "--smoke", "--skip", "peers", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# Benchmark results (smoke)")

    for name in SECTIONS:
        assert name in results, name
        assert "error" not in results[name], (name, results[name].get("error"), proc.stderr[-4000:])
        assert _number(results[name]["seconds"])

    assert all(_number(r["calls_per_s"]) and r["calls"] > 0 for r in results["floor"]["rows"])
    for row in results["drain"]["sweep"]:
        assert row["all_done"]
        assert row["completed"] == row["tasks"]
        for key in (
            "tasks_per_s",
            "calls_per_s",
            "calls_per_task",
            "floor_calls_per_s",
            "efficiency",
            "stub_cpu_pct",
            "worker_rss_mib_mean",
        ):
            assert _number(row[key]), key
    pickup = results["pickup"]
    for key in ("probe_load", "probe_tool", "workers_load", "sleep_poll"):
        lat = pickup[key]["latency"]
        assert lat["n"] > 0, key
        assert all(_number(lat[k]) for k in ("p50_ms", "p99_ms", "max_ms")), key
    assert all(_number(t["kill_to_reassigned_s"]) for t in results["recovery"]["trials"])
    for key in ("light_clients", "real_workers"):
        assert _number(results["idle"][key]["stub_cpu_pct"])
        assert _number(results["idle"][key]["stub_rss_mib"])
    assert _number(results["idle"]["real_workers"]["worker_rss_mib"])
    crowd = results["crowd"]
    assert crowd["all_waiting"]
    assert _number(crowd["idle"]["stub_cpu_pct"])
    assert crowd["singles"]["received"] == crowd["singles"]["tasks"]
    assert _number(crowd["singles"]["latency"]["p99_ms"])
    assert _number(crowd["singles"]["transactions_per_task"])
    assert crowd["burst"]["received"] == crowd["burst"]["tasks"]
    assert crowd["burst"]["double_assignments"] == 0
    for row in results["lockwait"]["rows"]:
        assert row["cli_exit"] == 0
        assert row["ping"]["n"] > 0
        assert row["heartbeat"]["n"] > 0
    for row in results["scaling"]["rows"]:
        assert _number(row["drain_seconds"])
        assert _number(row["board_cost"]["assign_us_median"])
    assert results["scaling"]["query_plans_on_largest"]
    prof = results["profile"]
    if "skipped" not in prof:  # pyinstrument comes with `uv sync --group bench`, not with `make test`
        assert _number(prof["busy_seconds"])
        assert prof["top_self"]
        assert _number(prof["board_alone"]["statements_per_task"])
        assert _number(prof["board_alone"]["sqlite_share"])
        assert _number(prof["per_task"]["stub_ms_per_task"])
        assert prof["per_task"]["stub"]
        assert prof["per_task"]["worker"]
    scrape = results["dashboard"]["scrape"]
    assert _number(scrape["metrics"]["p50_ms"])
    assert _number(scrape["board_snapshot"]["p50_ms"])
    live = results["dashboard"]["live"]
    if "skipped" not in live:  # needs /usr/bin/chromium
        assert all(_number(v) for v in live["stub_cpu_pct"].values())
