"""`python -m bench [--smoke] [--out DIR] [--only SECTION ...] [--skip SECTION ...] [--boards B,...]`:
run the measurements, write
`results.json`, `results.md`, `latency.png` (and `profile.md`) into DIR (default
bench/results/, or a temporary folder for --smoke).

Each section runs against its own real stub process (file database, 127.0.0.1) and its
own worker/client processes; every wait is bounded and nothing fails on a timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import crowd, dashboard, drain, floor, idle, lockwait, pickup, profile, recovery, report, scaling
from bench._harness import MachineMeter, loadavg, log, machine, start_stub
from bench.peers import section as peers

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
    "peers",
)
# floor comes with the drain sweep
DEFAULT = (
    "drain",
    "pickup",
    "recovery",
    "idle",
    "crowd",
    "lockwait",
    "scaling",
    "profile",
    "dashboard",
    "peers",
)

FULL: dict[str, Any] = {
    "floor": {"clients": [1, 4, 16, 64], "seconds": 5.0},
    "drain": {"sweep": [1, 4, 16, 64], "tasks": 2000, "floor_seconds": 5.0},
    "pickup": {
        "samples": 200,
        "worker_samples": 100,
        "n_workers": 4,
        "sleep_samples": 30,
        "sleep_interval": 1.0,
    },
    "recovery": {"lease": 5.0, "trials": 3},
    "idle": {"clients": 100, "procs": 4, "workers": 10, "window": 30.0},
    "crowd": {"agents": 1000, "procs": 8, "wait": 25.0, "idle_window": 30.0, "singles": 200, "burst": 1000},
    "lockwait": {"sizes": [100000]},
    "scaling": {"sizes": [1000, 10000, 50000], "n": 4},
    "profile": {"n": 16, "tasks": 2000},
    "dashboard": {
        "workers": 10,
        "tasks": 600,
        "steps": 10,
        "step_seconds": 0.3,
        "window": 30.0,
        "scrape_tasks": 10000,
        "scrape_samples": 50,
    },
    # bench/peers: the same no-op job on SAQ, Celery and procrastinate (Redis and PostgreSQL
    # started by the bench); M per system sized so that a drain takes a few seconds each.
    "peers": {
        "rounds": 3,
        "ns": [16, 4, 1],
        "jobs": {"pm-agent": 400, "saq": 2000, "celery": 2000, "procrastinate": 1000},
        "pickup_workers": 4,
        "pickup_samples": 50,
        "budget_seconds": 570.0,
    },
}
SMOKE: dict[str, Any] = {
    "floor": {"clients": [1, 2], "seconds": 1.0},
    "drain": {"sweep": [1, 2], "tasks": 20, "floor_seconds": 0.5},
    "pickup": {"samples": 5, "worker_samples": 3, "n_workers": 1, "sleep_samples": 3, "sleep_interval": 0.2},
    "recovery": {"lease": 1.0, "trials": 1},
    "idle": {"clients": 4, "procs": 2, "workers": 1, "window": 2.0},
    "crowd": {"agents": 20, "procs": 2, "wait": 25.0, "idle_window": 2.0, "singles": 5, "burst": 20},
    "lockwait": {"sizes": [500]},
    "scaling": {"sizes": [20, 60], "n": 2},
    "profile": {"n": 2, "tasks": 20},
    "dashboard": {
        "workers": 2,
        "tasks": 60,
        "steps": 3,
        "step_seconds": 0.1,
        "window": 3.0,
        "scrape_tasks": 500,
        "scrape_samples": 5,
    },
    "peers": {
        "rounds": 1,
        "ns": [2, 1],
        "jobs": {"pm-agent": 20, "saq": 50, "celery": 50, "procrastinate": 50},
        "warmup_per_worker": 1,
        "pickup_workers": 2,
        "pickup_samples": 3,
        "budget_seconds": 120.0,
        "settle_seconds": 0.3,
    },
}


def _floor(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Stand-alone floor (`--only floor`); the default run takes it from the drain sweep."""
    stub = start_stub(workdir / "floor")
    try:
        rows = [floor.measure(stub, k, cfg["seconds"], workdir / "floor") for k in cfg["clients"]]
    finally:
        stub.stop()
    return {"rows": rows}


def _floor_from_drain(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": "drain sweep: the better of two ping runs per N (before and after the drain, same stub)",
        "rows": [row["floor"] for row in d.get("sweep", []) if "floor" in row],
        "seconds": 0.0,
    }


def _section(name: str, workdir: Path, cfg: dict[str, Any], results_dir: Path) -> dict[str, Any]:
    if name == "floor":
        return _floor(workdir, cfg)
    if name == "drain":
        return drain.run(workdir, cfg["sweep"], cfg["tasks"], cfg["floor_seconds"])
    if name == "pickup":
        return pickup.run(
            workdir,
            samples=cfg["samples"],
            worker_samples=cfg["worker_samples"],
            n_workers=cfg["n_workers"],
            sleep_samples=cfg["sleep_samples"],
            sleep_interval=cfg["sleep_interval"],
        )
    if name == "recovery":
        return recovery.run(workdir, cfg["lease"], cfg["trials"])
    if name == "idle":
        return idle.run(
            workdir, clients=cfg["clients"], procs=cfg["procs"], workers=cfg["workers"], window=cfg["window"]
        )
    if name == "crowd":
        return crowd.run(
            workdir,
            agents=cfg["agents"],
            procs=cfg["procs"],
            wait=cfg["wait"],
            idle_window=cfg["idle_window"],
            singles=cfg["singles"],
            burst=cfg["burst"],
        )
    if name == "lockwait":
        return lockwait.run(workdir, cfg["sizes"])
    if name == "scaling":
        return scaling.run(workdir, cfg["sizes"], cfg["n"])
    if name == "profile":
        return profile.run(workdir, cfg["n"], cfg["tasks"], results_dir)
    if name == "dashboard":
        return dashboard.run(workdir, **cfg)
    if name == "peers":
        return peers.run(workdir, cfg)
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--smoke", action="store_true", help="a seconds-long run with tiny sizes (keeps the harness working)"
    )
    p.add_argument(
        "--out", type=Path, help="results folder (default bench/results/, a temp folder for --smoke)"
    )
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    p.add_argument("--skip", nargs="+", choices=SECTIONS, default=[], help="leave these sections out")
    p.add_argument(
        "--boards",
        default="auto",
        help="peers: our side's board backends, comma-separated (sqlite, postgresql); default auto: "
        "sqlite, and postgresql when the stub serves a postgresql:// board",
    )
    p.add_argument("--keep", action="store_true", help="keep the work folder (boards, logs)")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _quiet_structlog()
    # SIGTERM/SIGINT unwind through every `finally`, so no stub or worker outlives the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfgs = {k: dict(v) for k, v in (SMOKE if ns.smoke else FULL).items()}
    cfgs["peers"]["boards"] = ns.boards
    names = [n for n in (ns.only or DEFAULT) if n not in ns.skip]
    out = ns.out or (
        Path(tempfile.mkdtemp(prefix="bench-smoke-")) if ns.smoke else Path(__file__).parent / "results"
    )
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-work-"))
    results: dict[str, Any] = {
        "mode": "smoke" if ns.smoke else "full",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "config": {k: cfgs[k] for k in names},
    }
    t_all = time.monotonic()
    try:
        for name in names:
            log(f"== {name}")
            t0 = time.monotonic()
            load0 = loadavg()
            try:
                with MachineMeter() as busy:
                    section = _section(name, workdir, cfgs[name], out)
            except Exception as exc:  # a broken section is reported, the others still run
                traceback.print_exc()
                section = {"error": f"{type(exc).__name__}: {exc}"}
            section["seconds"] = round(time.monotonic() - t0, 1)
            section["machine_busy_pct_of_one_core"] = round(busy.busy_pct, 1)
            section["loadavg_1m_before"] = load0
            section["started_at"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - section["seconds"])
            )
            results[name] = section
            log(f"== {name} done in {section['seconds']} s")
            if name == "drain" and "floor" not in results and "sweep" in section:
                results["floor"] = {
                    **_floor_from_drain(section),
                    "machine_busy_pct_of_one_core": section["machine_busy_pct_of_one_core"],
                }
    finally:
        if not ns.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"work folder kept: {workdir}")
    results["total_seconds"] = took = round(time.monotonic() - t_all, 1)
    results = _merged(out / "results.json", results, names) if ns.only or ns.skip else results
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "results.md").write_text(report.markdown(results))
    if "profile" in results and not results["profile"].get("skipped") and "error" not in results["profile"]:
        (out / "profile.md").write_text(report.profile_markdown(results))
    plot = report.plot(results, out / "latency.png") if {"pickup", "drain"} & set(results) else None
    log(f"results in {out} ({'plot: ' + str(plot) if plot else 'no plot'}); this run took {took} s")
    print(report.markdown(results))
    return 0


def _merged(previous: Path, results: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A partial run (--only/--skip) replaces its sections in the folder's results of the same mode
    and keeps the others, so that re-running one section never drops the rest from results.md."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        return results
    if old.get("mode") != results["mode"]:
        return results
    update = {"command": results["command"], "started_at": results["started_at"], "sections": names}
    # Earlier re-runs keep only the sections this run did not replace.
    earlier = [
        {**u, "sections": [s for s in u["sections"] if s not in names]} for u in old.get("updates", [])
    ]
    return {
        **old,
        **{k: results[k] for k in (*names, "floor") if k in results},
        "config": {**old.get("config", {}), **results["config"]},
        "updates": [*(u for u in earlier if u["sections"]), update],
    }


def _quiet_structlog() -> None:
    """The board code logs its events through structlog; the bench process does not need them."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


if __name__ == "__main__":
    raise SystemExit(main())
