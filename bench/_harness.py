"""What every measurement needs: a real stub process on a file database, real worker
processes, task loading, /proc accounting, and small statistics helpers.

Everything runs on 127.0.0.1 and every wait has a deadline: a benchmark may report a bad
number, it never hangs and never fails on a timing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import StubProcess
from pm_agent_stub.testing import start_stub as start_stub_process

REPO_ROOT = Path(__file__).resolve().parents[1]
STEP_WORKER = REPO_ROOT / "examples" / "step_worker.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0.0 once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size in MiB (0.0 once the process is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * PAGE_SIZE / (1024 * 1024)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """utime + stime of each thread of a process, by OS thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


class StubThreads:
    """CPU of the stub's event-loop thread, board thread and the rest over a window."""

    def __init__(self, stub: Any) -> None:
        from pm_agent_stub.testing import http_get_json

        self.pid = stub.proc.pid
        _, health = http_get_json(f"{stub.base_url}/healthz", timeout=10)
        self.board_tid = (
            (health.get("board_thread") or {}).get("native_id") if isinstance(health, dict) else None
        )
        self.seconds: dict[str, float] = {}
        self._t0: dict[int, float] = {}

    def __enter__(self) -> StubThreads:
        self._t0 = thread_cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        t1 = thread_cpu_seconds(self.pid)
        used = {tid: t1[tid] - self._t0.get(tid, 0.0) for tid in t1}
        loop = used.pop(self.pid, 0.0)
        board = used.pop(self.board_tid, 0.0) if self.board_tid is not None else 0.0
        self.seconds = {"event_loop": loop, "board": board, "other_threads": sum(used.values())}

    def ms_per(self, calls: int) -> dict[str, float | None]:
        return {k: (round(1000 * v / calls, 3) if calls else None) for k, v in self.seconds.items()}


class CpuMeter:
    """CPU use of a set of processes over a window: `with CpuMeter([pid]) as m: ...; m.percent`."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.cpu = 0.0
        self.wall = 0.0
        self._t0 = 0.0
        self._c0 = 0.0

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._c0 = sum(cpu_seconds(p) for p in self.pids)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = sum(cpu_seconds(p) for p in self.pids) - self._c0
        self.wall = time.monotonic() - self._t0

    @property
    def percent(self) -> float:
        """Percent of one core."""
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


class MachineMeter:
    """How busy the whole machine was over a window, in percent of one core (200 = both of 2 cores).

    Others share this machine; a window where processes that are not ours kept the cores
    busy gives numbers to read with that in mind, so every section records it.
    """

    def __init__(self, ours: Sequence[int] = ()) -> None:
        self.ours = list(ours)
        self.busy_pct = 0.0
        self.others_pct = 0.0
        self._b0 = self._t0 = 0
        self._own0 = 0.0
        self._w0 = 0.0

    def __enter__(self) -> MachineMeter:
        self._b0, self._t0 = machine_busy_jiffies()
        self._own0 = sum(cpu_seconds(p) for p in self.ours)
        self._w0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        b1, _ = machine_busy_jiffies()
        wall = max(1e-9, time.monotonic() - self._w0)
        busy_s = (b1 - self._b0) / CLK_TCK
        own_s = sum(cpu_seconds(p) for p in self.ours) - self._own0
        self.busy_pct = 100.0 * busy_s / wall
        self.others_pct = max(0.0, 100.0 * (busy_s - own_s) / wall) if self.ours else float("nan")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return float(ordered[rank - 1])


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p90/p99/max/mean in milliseconds, plus n."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
    }


# ---------------------------------------------------------------------------- processes


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "LOG_", "AGENT_", "POLL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["LOG_FORMAT"] = "json"
    env.update(extra or {})
    return env


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0, sig: int = signal.SIGTERM) -> int:
    """Signal, wait up to `timeout`, SIGKILL if still there; the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return int(proc.returncode)


Stub = StubProcess
"""A running `python -m pm_agent_stub serve` (the test kit's): `.url`, `.db`, `.proc.pid`, `.stop()`."""


def start_stub(
    workdir: Path, env: dict[str, str] | None = None, wrap: Sequence[str] = (), timeout: float = 60.0
) -> StubProcess:
    """Start a stub on a fresh board file in `workdir`; return once `/healthz` answers.

    `wrap` puts a command in front of the module (e.g. pyinstrument's) for profiling.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    return start_stub_process(
        workdir / "board.db", env={"LOG_LEVEL": "info", **(env or {})}, wrap=tuple(wrap), timeout=timeout
    )


@dataclass
class Fleet:
    """Step-worker processes (examples/step_worker.py, built on pm_worker)."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    agent_ids: list[str] = field(default_factory=list)
    log_paths: list[Path] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self, timeout: float = 15.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def start_workers(
    stub: Stub,
    n: int,
    workdir: Path,
    *,
    prefix: str = "w",
    poll_wait: float = 25.0,
    env: dict[str, str] | None = None,
    wrap: Sequence[str] = (),
) -> Fleet:
    """Start `n` step workers against `stub` (they register and long-poll)."""
    logs = workdir / "worker-logs"
    logs.mkdir(parents=True, exist_ok=True)
    fleet = Fleet()
    for i in range(n):
        agent_id = f"{prefix}{i:03d}"
        worker_env = base_env(
            {
                "PM_AGENT_URL": stub.url,
                "AGENT_ID": agent_id,
                "POLL_WAIT_SECONDS": str(poll_wait),
                "WORKSPACE": str(workdir / "workspace"),
                "HEALTH_DIR": str(workdir / "health"),
                "SHUTDOWN_GRACE_SECONDS": "2",
                "RECONNECT_GIVE_UP_SECONDS": "30",
                **(env or {}),
            }
        )
        log_path = logs / f"{agent_id}.log"
        with log_path.open("ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, *wrap, str(STEP_WORKER)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=worker_env,
                cwd=REPO_ROOT,
            )
        fleet.procs.append(proc)
        fleet.agent_ids.append(agent_id)
        fleet.log_paths.append(log_path)
    return fleet


# ---------------------------------------------------------------------------- the board file


@contextlib.contextmanager
def reader(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(db), timeout=15)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def scalar(db: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    with reader(db) as conn:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll until `predicate()` is truthy; False (not an exception) if the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_registered(stub: Stub, fleet: Fleet, timeout: float) -> bool:
    """True once every agent of the fleet is on the board (others may be registered too)."""
    ids = list(fleet.agent_ids)
    marks = ",".join("?" * len(ids))
    return wait_for(
        lambda: (
            (scalar(stub.db, f"SELECT count(*) FROM agents WHERE agent_id IN ({marks})", ids) or 0)
            >= len(ids)
        ),
        timeout,
        0.1,
    )


def step_tasks(
    ids: Sequence[str], steps: int = 0, skill: str = "steps", **payload: Any
) -> list[dict[str, Any]]:
    return [
        {
            "id": tid,
            "name": f"bench {tid}",
            "required_skills": [skill],
            "payload": {"steps": steps, **payload},
        }
        for tid in ids
    ]


class Loader:
    """Puts tasks on the board the way `python -m pm_agent_stub load` does: another process
    committing to the same file (the stub's data_version watcher wakes its long-pollers)."""

    def __init__(self, db: Path) -> None:
        from pm_agent_stub.board import Board
        from pm_agent_stub.db import connect

        self.conn = connect(db)
        self.board = Board(self.conn)

    def load(self, tasks: list[dict[str, Any]], label: str = "bench") -> float:
        """Load in one transaction; the wall-clock time right after the commit."""
        from pm_agent_stub.project_file import ProjectSpec

        spec = ProjectSpec.model_validate({"project": "bench", "tasks": tasks})
        self.board.load_project(spec, label)
        return time.time()

    def close(self) -> None:
        self.conn.close()


def worker_settings(url: str, agent_id: str = "bench-client", **extra: Any) -> Any:
    """pm_worker settings for an in-bench client using the same connection code as workers."""
    from pm_worker.settings import WorkerSettings

    return WorkerSettings(pm_agent_url=url, agent_id=agent_id, **extra)


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    mem = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                mem[key] = round(int(value.split()[0]) / 1024 / 1024, 1)
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    free_g = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        free_g = subprocess.run(["free", "-g"], capture_output=True, text=True, timeout=5).stdout.strip()
    try:
        import importlib.metadata as md

        mcp_version = md.version("mcp")
    except Exception:
        mcp_version = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gib": mem.get("MemTotal"),
        "free_g": free_g,
        "python": sys.version.split()[0],
        "mcp_sdk": mcp_version,
        "sqlite": sqlite3.sqlite_version,
        "kernel": os.uname().release,
    }
