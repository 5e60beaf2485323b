"""Turn results.json into a short Markdown summary, profile.md and a latency plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import profile_shares
from bench.peers import table as peers_table

FINDINGS = Path(__file__).parent / "profile_findings.md"


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _lat(d: dict[str, Any] | None) -> str:
    if not d or not d.get("n"):
        return "- | - | - | 0"
    return f"{_f(d['p50_ms'])} | {_f(d['p99_ms'])} | {_f(d['max_ms'])} | {d['n']}"


def _heading(title: str, s: dict[str, Any], note: str = "") -> list[str]:
    """A section's title, then how busy the machine was while it ran (`note` goes on the same line)."""
    return [f"## {title}", "", f"busy {_f(s.get('machine_busy_pct_of_one_core'))} %{note}", ""]


def markdown(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    lines = [
        f"# Benchmark results ({r.get('mode')})",
        "",
        f"`{r.get('command')}` started {r.get('started_at')}, took {_f(r.get('total_seconds'))} s. Machine: "
        f"{m.get('nproc')} cores ({m.get('cpu_model')}), {m.get('mem_total_gib')} GiB, Python {m.get('python')}, "
        f"MCP SDK {m.get('mcp_sdk')}, SQLite {m.get('sqlite')}.",
        "",
        *[
            f"Sections re-run since by `{u['command']}` at {u['started_at']}: {', '.join(u['sections'])}.\n"
            for u in r.get("updates", [])
        ],
        "Each section's `busy` is how busy the whole machine was while it ran, in % of one core "
        "(200 = both cores); the machine is shared, so read figures next to it.",
        "",
    ]
    if "floor" in r and "rows" in r["floor"]:
        s = r["floor"]
        lines += [
            *_heading(
                "1. MCP floor (`ping`, one call in flight per client process)",
                s,
                f"; {s['source']}" if s.get("source") else "",
            ),
            "| client processes | calls/s | stub CPU % | stub CPU ms/call | client CPU ms/call | client p50 ms "
            "| others' CPU % |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {x['clients']} | {_f(x['calls_per_s'])} | {_f(x['stub_cpu_pct'])} | "
            f"{_f(x['stub_cpu_ms_per_call'], 2)} | {_f(x.get('client_cpu_ms_per_call'), 2)} | "
            f"{_f(x['latency_p50_ms_median_client'])} | {_f(x.get('others_cpu_pct'))} |"
            for x in s["rows"]
        ]
        lines.append("")
    if "drain" in r and "sweep" in r["drain"]:
        s = r["drain"]
        lines += [
            *_heading(
                f"2. Drain throughput ({s['tasks']} no-op tasks, `{{steps: 0}}`)",
                s,
                f"; goal efficiency ≥ {s['goal_efficiency']}",
            ),
            "| workers | tasks/s | calls/task | calls/s | floor calls/s (same K) | efficiency | CPU efficiency "
            "| bare-SDK cycle calls/s | stub ms/call (floor) | of it loop / board thread | worker ms/call "
            "(floor client) | worker RSS MiB | others' CPU % |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {x['workers']} | {_f(x['tasks_per_s'])} | {_f(x['calls_per_task'], 2)} | {_f(x['calls_per_s'])} | "
            f"{_f(x.get('floor_calls_per_s'))} | {_f(x.get('efficiency'), 2)} | {_f(x.get('cpu_efficiency'), 2)} | "
            f"{_f(x.get('raw_sdk_calls_per_s'))} | {_f(x['stub_cpu_ms_per_call'], 2)} "
            f"({_f(x.get('floor_stub_cpu_ms_per_call'), 2)}) | "
            f"{_f((x.get('stub_thread_ms_per_call') or {}).get('event_loop'), 2)} / "
            f"{_f((x.get('stub_thread_ms_per_call') or {}).get('board'), 2)} | {_f(x['workers_cpu_ms_per_call'], 2)} "
            f"({_f(x.get('floor_client_cpu_ms_per_call'), 2)}) | {_f(x['worker_rss_mib_mean'])} | "
            f"{_f(x.get('others_cpu_pct'))} |"
            for x in s["sweep"]
        ]
        lines += [
            "",
            "efficiency = drain calls/s ÷ the better of two `ping` floors (before and after the drain, same "
            "stub, same number of client processes). CPU efficiency = (stub + client CPU per ping) ÷ (stub + "
            "worker CPU per drain call), steadier on a shared machine. Bare-SDK cycle = the same two calls per "
            "task from bare `pm_worker.connection` clients (no Worker loop, no typed client). Others' CPU = CPU "
            "used during the drain by processes that are not this benchmark's (% of one core; 200 = the whole "
            "machine).",
            "",
        ]
    if "pickup" in r and "probe_load" in r["pickup"]:
        s = r["pickup"]
        lines += [
            *_heading(
                "3. Pickup latency (insert → assignment at an idle worker)",
                s,
                f"; goal p99 ≤ {s['goal_p99_ms']} ms",
            ),
            "| path | p50 ms | p99 ms | max ms | n |",
            "|---|---:|---:|---:|---:|",
            f"| probe client, `load` from another process (data_version watcher) | {_lat(s['probe_load']['latency'])} |",
            f"| probe client, `resolve_blocker` tool (in-process wake) | {_lat(s['probe_tool']['latency'])} |",
            f"| {s['workers_load']['workers']} step workers, `load` (worker's `task received` log) | "
            f"{_lat(s['workers_load']['latency'])} |",
            f"| tutorial sleep-poll, {s['sleep_poll']['interval_s']} s interval (measured) | "
            f"{_lat(s['sleep_poll']['latency'])} |",
            f"| tutorial sleep-poll scaled to 30 s | {_lat(s['sleep_poll']['scaled_to_30s'])} |",
            "| tutorial sleep-poll 30 s, analytic (uniform arrival) | 15,000.0 | 29,700.0 | 30,000.0 | - |",
            "",
        ]
    if "recovery" in r and "trials" in r["recovery"]:
        s = r["recovery"]
        lines += [
            f"## 4. Dead worker recovery (SIGKILL mid-task, PM_LEASE_SECONDS={_f(s['lease_s'])})",
            "",
            f"goal ≤ {_f(s['goal_s'])} s",
            "",
            "| trial | kill → expired s | kill → held by another worker s |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {t['trial']} | {_f(t.get('kill_to_expired_s'), 3)} | {_f(t.get('kill_to_reassigned_s'), 3)} |"
            if "error" not in t
            else f"| {t['trial']} | {t['error']} | |"
            for t in s["trials"]
        ]
        lines.append("")
    if "idle" in r and "light_clients" in r["idle"]:
        s = r["idle"]
        lc, rw = s["light_clients"], s["real_workers"]
        lines += [
            "## 5. Idle cost (long-polling, nothing to do)",
            "",
            f"goal stub CPU ≤ {s['goal_stub_cpu_pct']} % of a core",
            "",
            "| fleet | window s | stub CPU % | stub RSS MiB | per-worker RSS MiB | per-worker CPU % |",
            "|---|---:|---:|---:|---:|---:|",
            f"| {lc['clients']} long-poll clients in {lc['processes']} processes | {_f(lc['window_s'])} | "
            f"{_f(lc['stub_cpu_pct'], 2)} | {_f(lc['stub_rss_mib'])} | - | - |",
            f"| {rw['workers']} step-worker processes | {_f(rw['window_s'])} | {_f(rw['stub_cpu_pct'], 2)} | "
            f"{_f(rw['stub_rss_mib'])} | {_f(rw['worker_rss_mib'])} | {_f(rw['worker_cpu_pct'], 2)} |",
            "",
        ]
    if "scaling" in r and "rows" in r["scaling"]:
        s = r["scaling"]
        lines += [
            f"## 6. Scaling with work ({s['workers']} workers)",
            "",
            "| tasks | drain s | tasks/s | ms/task | per-task vs smallest | board µs assign + complete |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {x['tasks']:,} | {_f(x['drain_seconds'])} | {_f(x['tasks_per_s'])} | {_f(x['ms_per_task'], 2)} | "
            f"{_f(x['per_task_vs_smallest'], 2)} | {_f(x['board_cost']['assign_us_median'])} + "
            f"{_f(x['board_cost']['complete_us_median'])} |"
            for x in s["rows"]
        ]
        hot = s.get("full_scans_on_hot_path", [])
        other = [p for p in s.get("full_scans", []) if not p.get("hot_path")]
        lines += [
            "",
            f"Full-table scans on the worker path (assignment, reports, heartbeat, sweep): "
            f"{len(hot) or 'none'}.",
        ]
        lines += [f"- `{p['sql'][:160]}` ({p['call']}): {'; '.join(p['plan'])}" for p in hot]
        if other:
            lines.append(
                "Off the worker path: " + "; ".join(f"`{p['sql'][:90]}` ({p['call']})" for p in other) + "."
            )
        lines.append("")
    if "crowd" in r and "burst" in r["crowd"]:
        s = r["crowd"]
        g = s["goals"]
        idle, one, burst = s["idle"], s["singles"], s["burst"]
        lines += [
            *_heading(
                f"7. A crowd on one stub ({s['agents']:,} long-polling agents in {s['processes']} "
                f"processes, wait_seconds={_f(s['wait_seconds'])})",
                s,
                f"; all waiting after {_f(s['start_seconds'])} s; stub descriptors "
                f"{_f(s.get('stub_open_fds'))} (limit {s['fd_limits'].get('stub_soft', '?')})",
            ),
            "| what | figure | goal | load avg (1 min, before → after) |",
            "|---|---|---|---|",
            f"| idle {_f(idle['window_s'])} s: stub CPU | {_f(idle['stub_cpu_pct'], 2)} % of a core, RSS "
            f"{_f(idle['stub_rss_mib'])} MiB, {_f(idle['transactions_per_s'])} request_next_task "
            f"transactions/s (expiring polls re-asked) | ≤ {_f(g['idle_cpu_pct'])} % | "
            f"{idle['loadavg_1m'][0]} → {idle['loadavg_1m'][1]} |",
            f"| {one['tasks']} single tasks: pickup p50 / p99 / max | {_f(one['latency']['p50_ms'])} / "
            f"{_f(one['latency']['p99_ms'])} / {_f(one['latency']['max_ms'])} ms | p99 ≤ {_f(g['pickup_p99_ms'])} ms "
            f"| {one['loadavg_1m'][0]} → {one['loadavg_1m'][1]} |",
            f"| single tasks: assignment transactions per task handed out | "
            f"{_f(one['transactions_per_task'], 2)} (with expiring polls' re-asks: "
            f"{_f(one['all_transactions_per_task'], 2)}); wake-ups per task {_f(one['wakeups_per_task'], 2)}, "
            f"wasted {one['counters']['wasted']} | ≤ {_f(g['transactions_per_task'])} | |",
            f"| burst of {burst['tasks']:,}: all assigned / all received | {_f(burst['all_assigned_s'], 2)} s / "
            f"{_f(burst['all_received_s'], 2)} s | - | {burst['loadavg_1m'][0]} → {burst['loadavg_1m'][1]} |",
            f"| burst: double assignments | {burst['double_assignments']} | 0 | |",
            f"| burst: pickup p50 / p99 / max | {_f(burst['latency']['p50_ms'])} / {_f(burst['latency']['p99_ms'])}"
            f" / {_f(burst['latency']['max_ms'])} ms | - | |",
            f"| burst: assignment transactions per task | {_f(burst['transactions_per_task'], 2)}; wake-ups per "
            f"task {_f(burst['wakeups_per_task'], 2)}, wasted {burst['counters']['wasted']} | ≤ "
            f"{_f(g['transactions_per_task'])} | |",
            "",
            "Transactions per task = (request_next_task transactions - polls that expired) ÷ tasks assigned, "
            "from the stub's own counters (/healthz). 2 is the floor: the woken agent's look that hands the "
            "task out, and that agent's next ask after completing it. Pickup = the load's commit in another "
            "process → the agent holding the answer.",
            "",
        ]
    if "lockwait" in r and "rows" in r["lockwait"]:
        s = r["lockwait"]
        lines += [
            *_heading("8. A big `load` from another process while the stub serves", s),
            "| tasks loaded | CLI s | ping p50 / max ms | heartbeat p50 / max ms | load avg (1 min) |",
            "|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {x['tasks']:,} | {_f(x['cli_seconds'])} | {_f(x['ping']['p50_ms'])} / {_f(x['ping']['max_ms'])} | "
            f"{_f(x['heartbeat']['p50_ms'])} / {_f(x['heartbeat']['max_ms'])} | "
            f"{x['loadavg_1m'][0]} → {x['loadavg_1m'][1]} |"
            for x in s["rows"]
        ]
        lines += [
            "",
            "The longest heartbeat is how long the load held the write lock as the stub saw it; ping "
            "touches no table and never waits for it (the board runs on its own thread).",
            "",
        ]
    if "profile" in r and "top_self" in r["profile"]:
        s = r["profile"]
        lines += [
            f"## Profile of the stub under a drain ({s['workers']} workers, {s['tasks']} tasks)",
            "",
            "See profile.md. Busy time by package:",
            "",
            "| package | share of busy |",
            "|---|---:|",
        ]
        lines += [f"| {x['package']} | {_f(100 * x['share_of_busy'])} % |" for x in s["by_package"][:8]]
        lines.append("")
    if "dashboard" in r and "scrape" in r["dashboard"]:
        s = r["dashboard"]
        sc, live = s["scrape"], s.get("live", {})
        lines += [
            *_heading("9. Dashboard and /metrics", s),
            f"Scrape on a {sc['tasks']:,}-task board ({sc['board_by_status']}), one request at a time:",
            "",
            "| endpoint | p50 ms | p99 ms | max ms | n | bytes |",
            "|---|---:|---:|---:|---:|---:|",
            f"| `/metrics` | {_lat(sc['metrics'])} | {_f(sc['metrics_bytes'])} |",
            f"| `/dashboard/api/board` | {_lat(sc['board_snapshot'])} | {_f(sc['board_bytes'])} |",
            "",
        ]
        if "skipped" in live:
            lines += [f"Live page: skipped ({live['skipped']}).", ""]
        elif "stub_cpu_pct" in live:
            cpu, comp, busy = live["stub_cpu_pct"], live["completions"], live["machine_busy_pct"]
            lines += [
                f"{live['workers']} busy step workers (tasks of {live['task']['steps']} x "
                f"{live['task']['step_seconds']} s steps), {_f(live['window_s'])} s windows on one stub:",
                "",
                "| window | stub CPU % of a core | completions | machine busy % |",
                "|---|---:|---:|---:|",
            ]
            lines += [
                f"| {name.replace('_', ' ')} | {_f(cpu[name], 2)} | {comp[name]} | {_f(busy[name])} |"
                for name in cpu
            ]
            lat = live["completion_to_page"]
            lines += [
                "",
                f"Completion (commit) → page shows it done: p50 {_f(lat['p50_ms'])} ms, p99 "
                f"{_f(lat['p99_ms'])} ms, max {_f(lat['max_ms'])} ms over {lat['n']} completions "
                f"({live['page_snapshots']} snapshots pushed to the page, "
                f"{_f(live.get('snapshot_build_mean_ms'), 2)} ms each to build).",
                "",
            ]
    if "peers" in r and "columns" in r["peers"]:
        lines += peers_table.markdown(r["peers"])
    elif "peers" in r and "skipped" in r["peers"]:
        lines += [
            "## 10. Side by side with the queues users know",
            "",
            f"Skipped: {r['peers']['skipped']}",
            "",
        ]
    errors = [k for k, v in r.items() if isinstance(v, dict) and "error" in v]
    if errors:
        lines += ["## Sections that failed", ""] + [f"- {k}: {r[k]['error']}" for k in errors] + [""]
    return "\n".join(lines) + "\n"


def _profile_tables(s: dict[str, Any]) -> list[str]:
    busy = s["busy_seconds"] or 1.0
    lines = [
        f"Sampled {_f(s['sampled_seconds'], 2)} s of the serving loop: busy {_f(s['busy_seconds'], 2)} s, "
        f"idle (event loop in epoll) {_f(s['idle_seconds'], 2)} s.",
        "",
        "Inclusive time of parts of a call:",
        "",
        "| part | seconds | share of busy |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {k} | {_f(v, 2)} | {_f(100 * v / busy)} % |" for k, v in s.get("inclusive_seconds", {}).items()
    ]
    lines += ["", "Self time by package:", "", "| package | seconds | share of busy |", "|---|---:|---:|"]
    lines += [
        f"| {x['package']} | {_f(x['seconds'], 2)} | {_f(100 * x['share_of_busy'])} % |"
        for x in s["by_package"][:14]
    ]
    lines += [
        "",
        "Top functions by self time:",
        "",
        "| function | seconds | share of busy |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| `{x['function']}` | {_f(x['seconds'], 2)} | {_f(100 * x['share_of_busy'])} % |"
        for x in s["top_self"][:20]
    ]
    return [*lines, ""]


def profile_markdown(r: dict[str, Any]) -> str:
    s = r["profile"]
    d = s.get("drain", {})
    lines = [
        "# Where the time goes under a drain",
        "",
        f"pyinstrument (wall-clock sampling, 1 ms) on the stub process while {s['workers']} step workers drained "
        f"{s['tasks']} no-op tasks ({_f(d.get('tasks_per_s'))} tasks/s, {_f(d.get('calls_per_s'))} calls/s under the "
        "profiler), then on one step-worker process draining alone. Only the serving loop counts (start-up imports "
        "left out). Regenerated by `python -m bench --only profile`; the full trees are in profile_tree.txt and "
        "profile_worker_tree.txt. Wall-clock sampling on a shared 2-core machine charges time the process "
        "was preempted to whatever it was doing, which is mostly `socket.send` (the send wakes the peer process).",
        "",
    ]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().strip(), ""]
    split = d.get("stub_thread_ms_per_call") or {}
    if split:
        lines += [
            "## The stub",
            "",
            f"CPU per call by thread (/proc, the profiled drain): event loop {_f(split.get('event_loop'), 3)} ms, "
            f"board thread {_f(split.get('board'), 3)} ms, other threads {_f(split.get('other_threads'), 3)} ms. "
            "The tables below sample the event-loop thread only.",
            "",
            *profile_shares.markdown(s),
            *_profile_tables(s),
        ]
    else:
        lines += ["## The stub", "", *_profile_tables(s)]
    if "worker" in s:
        w = s["worker"]
        lines += [
            f"## One worker (pm_worker + MCP SDK client), {w['tasks']} tasks alone",
            "",
            *_profile_tables(w),
        ]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> Path | None:
    """Latency distributions (ECDF, log x) of the pickup runs; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pk = r.get("pickup", {})
    series = []
    for key, label in (
        ("probe_tool", "tool path (in-process wake)"),
        ("probe_load", "load from another process"),
        ("workers_load", "step workers, load"),
        ("sleep_poll", "tutorial sleep-poll (scaled interval)"),
    ):
        samples = pk.get(key, {}).get("samples_s") or []
        if samples:
            series.append((label, sorted(1000 * s for s in samples)))
    rec = r.get("recovery", {}).get("trials", [])
    rec_s = sorted(1000 * t["kill_to_reassigned_s"] for t in rec if "kill_to_reassigned_s" in t)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    for label, xs in series:
        n = len(xs)
        ax.step(xs, [(i + 1) / n for i in range(n)], where="post", label=f"{label} (n={n})")
    goal = pk.get("goal_p99_ms")
    if goal:
        ax.axvline(goal, color="grey", linestyle="--", linewidth=1, label=f"goal p99 {goal:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("insert → assignment at the worker (ms, log)")
    ax.set_ylabel("fraction of tasks")
    ax.set_title("Pickup latency (ECDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    drain_rows = r.get("drain", {}).get("sweep", [])
    if drain_rows:
        ns = [str(x["workers"]) for x in drain_rows]
        ax.bar(
            [i - 0.2 for i in range(len(ns))],
            [x["calls_per_s"] or 0 for x in drain_rows],
            width=0.4,
            label="drain calls/s",
        )
        ax.bar(
            [i + 0.2 for i in range(len(ns))],
            [x.get("floor_calls_per_s") or 0 for x in drain_rows],
            width=0.4,
            label="ping floor calls/s",
        )
        ax.set_xticks(range(len(ns)), ns)
        ax.set_xlabel("worker / client processes")
        ax.set_ylabel("MCP calls/s")
        title = "Drain vs floor"
        if rec_s:
            title += f"; SIGKILL recovery {', '.join(f'{v / 1000:.2f}' for v in rec_s)} s"
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
