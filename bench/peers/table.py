"""The peers section of results.md: issue 26's table, with how busy the machine was."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(s: dict[str, Any]) -> list[str]:
    cfg = s["config"]
    cols = list(s["columns"].values())
    ns = [str(n) for n in sorted(cfg["ns"])]
    top = str(max(cfg["ns"]))
    la0, la1 = s["loadavg_start"], s["loadavg_end"]
    measured = min((c["rounds"] for c in cols), default=0)
    lines = [
        f"## 10. Side by side with the queues users know (`bench/peers`: {measured} of {cfg['rounds']} "
        "interleaved rounds within the time budget)",
        "",
        f"busy {_f(s.get('machine_busy_pct_of_one_core'))} % of one core over the section; load averages "
        f"(1/5/15 min) {' / '.join(map(str, la0))} at the start, {' / '.join(map(str, la1))} at the end. "
        "No-op jobs; each worker one process running one job at a time; medians over rounds.",
        "",
        "| | " + " | ".join(c["label"] for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
        f"| drain jobs/s, N = {' / '.join(ns)} | "
        + " | ".join(" / ".join(_f(c["drain"][n]["jobs_per_s"], 0) for n in ns) for c in cols)
        + " |",
        f"| coordinator CPU ms per job (N={top}) | "
        + " | ".join(_f(c["drain"][top]["coordinator_cpu_ms_per_job"], 2) for c in cols)
        + " |",
        f"| worker CPU ms per job (N={top}) | "
        + " | ".join(_f(c["drain"][top]["worker_cpu_ms_per_job"], 2) for c in cols)
        + " |",
        f"| total CPU ms per job (N={top}) | "
        + " | ".join(_f(c["drain"][top]["total_cpu_ms_per_job"], 2) for c in cols)
        + " |",
        f"| pickup p50 / p99 ms ({cfg['pickup_workers']} idle workers) | "
        + " | ".join(
            f"{_f(c['pickup']['latency']['p50_ms'])} / {_f(c['pickup']['latency']['p99_ms'])}" for c in cols
        )
        + " |",
        "| of it, the submit call p50 ms | "
        + " | ".join(_f(c["pickup"]["submit_call_p50_ms"], 2) for c in cols)
        + " |",
        f"| RSS per worker process MiB (after the N={top} drain) | "
        + " | ".join(_f(c["drain"][top]["worker_rss_mib_mean"]) for c in cols)
        + " |",
        "| rounds measured / jobs per drain | "
        + " | ".join(f"{c['rounds']} / {_f(c['jobs_per_drain'])}" for c in cols)
        + " |",
        f"| others' CPU % of a core during the N={top} drains | "
        + " | ".join(_f(c["drain"][top]["others_cpu_pct"]) for c in cols)
        + " |",
        "",
        "Coordinator: " + "; ".join(f"{c['label']}: {c['coordinator']}" for c in cols) + ". "
        "jobs/s = M ÷ (last completion as the system recorded it - the release, enqueueing included); "
        "CPU from /proc over the drain window (whole process trees); pickup = the submit call starts → "
        "the job function starts in a worker, pooled over rounds (it includes the submit call: our "
        "`load_project` tool call, procrastinate's committed INSERT). Redis runs without persistence; "
        "PostgreSQL with fsync on.",
        "",
    ]
    for key, r in s.get("ratios", {}).items():
        lines.append(
            f"Ratios, {s['columns'][key]['label']}: drain N={top} ÷ procrastinate's "
            f"{_f(r.get(f'drain_jobs_per_s_n{top}_vs_procrastinate'), 2)} (goal ≥ 1), total CPU per job ÷ "
            f"procrastinate's {_f(r.get(f'total_cpu_ms_per_job_n{top}_vs_procrastinate'), 2)} (goal ≤ 1), pickup "
            f"p99 ÷ procrastinate's {_f(r.get('pickup_p99_vs_procrastinate'), 2)} (goal ≤ 1), p50 ÷ SAQ's "
            f"{_f(r.get('pickup_p50_vs_saq'), 2)} (goal ≤ 2)."
        )
    for board, why in s.get("boards_skipped", {}).items():
        lines.append(f"Our side on {board}: not measured ({why}).")
    v = s.get("versions", {})
    lines += [
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
    ]
    if s.get("errors"):
        lines += ["Blocks that failed:", "", *[f"- {e}" for e in s["errors"]], ""]
    return lines
