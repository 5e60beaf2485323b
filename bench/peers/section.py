"""`python -m bench --only peers`: start Redis and PostgreSQL, build the columns, run the
interleaved rounds, and reduce them to the table (medians over rounds)."""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import importlib.util
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench._harness import log, summary_ms
from bench.peers.base import System
from bench.peers.ours import BOARDS, Ours, probe_postgres_board
from bench.peers.pg_peers import Procrastinate, create_schema
from bench.peers.proc import loadavg3
from bench.peers.redis_peers import CeleryPeer, Saq
from bench.peers.rounds import Config, interleave
from bench.peers.servers import Postgres, Redis, ServerUnavailable, start_postgres, start_redis


def _median(values: list[Any]) -> float | None:
    xs = [float(v) for v in values if isinstance(v, (int, float))]
    return round(statistics.median(xs), 3) if xs else None


def _versions(redis: Redis, pg: Postgres) -> dict[str, str]:
    out = {}
    for dist in ("saq", "celery", "kombu", "redis", "procrastinate", "psycopg", "mcp"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "?"
    try:
        out["redis-server"] = (
            subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            .stdout.split(" v=")[1]
            .split()[0]
        )
    except (IndexError, OSError, subprocess.SubprocessError):
        out["redis-server"] = "?"
    done = pg.run(str(pg.bindir / "postgres"), "--version")
    found = re.search(r"\d+\.\d+", done.stdout) if done.returncode == 0 else None
    out["postgresql"] = found.group(0) if found else "?"
    return out


def summarise(system: System, blocks: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    drain: dict[str, Any] = {}
    for n in cfg.ns:
        rows = [b["drains"][str(n)] for b in blocks if str(n) in b.get("drains", {})]
        drain[str(n)] = {
            "rounds": len(rows),
            **{
                k: _median([r.get(k) for r in rows])
                for k in (
                    "jobs_per_s",
                    "coordinator_cpu_ms_per_job",
                    "worker_cpu_ms_per_job",
                    "total_cpu_ms_per_job",
                    "producer_cpu_ms_per_job",
                    "worker_rss_mib_mean",
                    "enqueue_seconds",
                    "drain_seconds",
                    "others_cpu_pct",
                )
            },
            "jobs_per_s_rounds": [r.get("jobs_per_s") for r in rows],
        }
    picks = [b["pickup"] for b in blocks if "pickup" in b]
    samples = [s for p in picks for s in p["samples_s"]]
    return {
        "label": system.label,
        "coordinator": system.coordinator,
        "jobs_per_drain": cfg.m(system),
        "rounds": len(blocks),
        "drain": drain,
        "pickup": {
            "workers": cfg.pickup_workers,
            "latency": summary_ms(samples),
            "p50_ms_rounds": [p["latency"]["p50_ms"] for p in picks],
            "submit_call_p50_ms": _median([p["submit_call"]["p50_ms"] for p in picks]),
            "missing": sum(p["missing"] for p in picks),
        },
    }


def ratios(columns: dict[str, Any], top: int) -> dict[str, Any]:
    """Ours against the peers the goals of issue 26 name (same run)."""

    def at(key: str, *path: str) -> float | None:
        v: Any = columns.get(key)
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return float(v) if isinstance(v, (int, float)) else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out: dict[str, Any] = {}
    for key in columns:
        if not key.startswith("pm-agent"):
            continue
        n = str(top)
        out[key] = {
            f"drain_jobs_per_s_n{top}_vs_procrastinate": ratio(
                at(key, "drain", n, "jobs_per_s"), at("procrastinate", "drain", n, "jobs_per_s")
            ),
            f"total_cpu_ms_per_job_n{top}_vs_procrastinate": ratio(
                at(key, "drain", n, "total_cpu_ms_per_job"),
                at("procrastinate", "drain", n, "total_cpu_ms_per_job"),
            ),
            "pickup_p99_vs_procrastinate": ratio(
                at(key, "pickup", "latency", "p99_ms"), at("procrastinate", "pickup", "latency", "p99_ms")
            ),
            "pickup_p50_vs_saq": ratio(
                at(key, "pickup", "latency", "p50_ms"), at("saq", "pickup", "latency", "p50_ms")
            ),
        }
    return out


def run(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_run(workdir, dict(cfg)))


async def _run(workdir: Path, raw: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    boards = raw.pop("boards", "auto")
    cfg = Config(**raw)
    wd = workdir / "peers"
    wd.mkdir(parents=True, exist_ok=True)
    load0 = loadavg3()
    missing = [d for d in ("saq", "celery", "procrastinate") if importlib.util.find_spec(d) is None]
    if missing:
        return {"skipped": f"{', '.join(missing)} not installed: uv sync --group peers (make install has it)"}
    redis: Redis | None = None
    pg: Postgres | None = None
    try:
        try:
            redis = start_redis(wd)
            pg = start_postgres()
        except ServerUnavailable as exc:
            log(f"peers: skipped: {exc}")
            return {"skipped": str(exc).splitlines()[0]}
        skipped_boards: dict[str, str] = {}
        if boards == "auto":
            chosen = ["sqlite"]
            why_not = probe_postgres_board(pg, wd)
            if why_not is None:
                chosen.append("postgresql")
            else:
                skipped_boards["postgresql"] = why_not
        else:
            chosen = [b.strip() for b in str(boards).split(",") if b.strip()]
            unknown = [b for b in chosen if b not in BOARDS]
            if unknown:
                raise ValueError(f"unknown board {unknown}: give any of {', '.join(BOARDS)}")
        await create_schema(pg)
        systems: list[System] = [Ours(wd, b, pg) for b in chosen]
        systems += [Saq(wd, redis), CeleryPeer(wd, redis), Procrastinate(wd, pg)]
        versions = _versions(redis, pg)
        done = await interleave(systems, cfg, started)
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
    columns = {s.key: summarise(s, done["blocks"][s.key], cfg) for s in systems}
    return {
        "config": {**{k: v for k, v in vars(cfg).items()}, "boards": chosen},
        "boards_skipped": skipped_boards,
        "versions": versions,
        "loadavg_start": load0,
        "loadavg_end": loadavg3(),
        "columns": columns,
        "ratios": ratios(columns, cfg.ns[0]),
        "errors": done["errors"],
        "round_seconds": done["round_seconds"],
        "blocks": done["blocks"],
    }
