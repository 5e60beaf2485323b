"""Prometheus metrics of one stub process, served at `GET /metrics` (dashboard/routes.py).

Each figure comes from where it is cheapest and truest:

- Counters (`pm_agent_task_assignments_total`, `..._completions_total`, `pm_agent_lease_expiries_total`,
  `pm_agent_fencings_total`, `pm_agent_blockers_total{severity}`, `pm_agent_task_releases_total`,
  `pm_agent_blocker_resolutions_total`, `pm_agent_tasks_loaded_total`, `pm_agent_agents_forgotten_total`,
  `pm_agent_task_reruns_total`, `pm_agent_agent_deregistrations_total`)
  count the events of this process's commits (`Board.add_listener`): no SQL. They start at 0 when the stub starts
  (Prometheus' `rate()`/`increase()` treat that as a counter reset), and they do not count
  events that *other* processes write to the same file (`python -m pm_agent_stub resolve`/`load`,
  a sibling stub): those show in the gauges, and in the counters of the process that wrote them.
- Gauges are read from the board file at scrape time, so they include every process's writes:
  tasks and workers by status (`Board.get_project_status`, the very counts `status --json`
  prints), `pm_agent_ready_tasks{skills}` (one walk of the partial index of offerable tasks),
  and the long-poll waiters of this process.
- Histograms are timed here: every MCP tool call (`pm_agent_tool_call_duration_seconds{tool}`;
  a long-poll's time includes its wait), and the pickup latency: from the moment a task became
  offerable (loaded, requeued, or its last dependency done) to its assignment, read from the
  board once per assignment, after the commit.

`pm_agent_ready_tasks{skills="a,b"}` is the autoscaler's contract: tasks offerable now (todo, no
pending dependency) per skill signature (the task's required skills, lower-cased, sorted,
comma-joined; "" for none). Every signature on the board has a series, 0 when none is ready,
so a scaler sees "nothing to do" instead of a missing series. `pm_agent_in_progress_tasks{skills}`
counts the held ones the same way, so a scaler can keep the replicas that are busy
(ready + in progress) instead of following the backlog down.

Series are bounded (issue 24 item 6: 20,000 tasks with distinct skill sets had made 40,000
series, one label 6.5 KB): the first `max_skill_sets` signatures the board saw have a series
each, and every later one is summed into one series `skills="OTHER"` (upper case: a signature
is lower-cased, so no real one can be named so), present only while something is folded;
`pm_agent_skill_sets` says how many signatures there are. Skill names cannot hold a comma
(pm_protocol `skill_name`); a signature stored before that rule with such a skill is folded
too, since its label would read as other skills.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

import mcp.types as mcp_types
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

from pm_agent_stub import __version__
from pm_agent_stub.board import Board, BoardEvent, Commit
from pm_agent_stub.logs import get_logger
from pm_protocol.errors import ERROR_CODES
from pm_protocol.tools import TOOLS_BY_NAME

log = get_logger("pm_agent_stub.metrics")

# `*_created` series (one per counter and label set) double the exposition for nothing a
# dashboard or alert here reads; the switch is process-wide, as the library provides it.
disable_created_metrics()  # type: ignore[no-untyped-call]

TASK_STATUSES: Final = ("todo", "in_progress", "blocked", "done")
WORKER_STATUSES: Final = ("working", "idle", "offline")
SEVERITIES: Final = ("low", "medium", "high", "critical")
# Tool calls are mostly sub-millisecond; long-polls run up to 30 s.
TOOL_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PICKUP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
MAX_PENDING_PICKUPS: Final = 10_000  # assignments waiting for their pickup time to be read
MAX_SKILL_SETS: Final = 100
OTHER: Final = "OTHER"  # the `skills` label of the signatures beyond the cap


def skills_label(skill_sig: str) -> str | None:
    """The `skills` label of a skill signature: `["a","b"]` (the board's column) -> `a,b`;
    None if a skill holds a comma (stored before skill names were checked: ambiguous)."""
    skills: list[str] = json.loads(skill_sig)
    if any("," in s for s in skills):
        return None
    return ",".join(skills)


class BoardGauges:
    """The scrape-time gauges: read from the board file whenever Prometheus asks."""

    def __init__(
        self, board: Board, waiters: Callable[[], int], max_skill_sets: int = MAX_SKILL_SETS
    ) -> None:
        self._board = board
        self._waiters = waiters
        self.max_skill_sets = max_skill_sets

    def collect(self) -> Iterable[Metric]:
        status = self._board.get_project_status()
        tasks = GaugeMetricFamily("pm_agent_tasks", "Tasks on the board by status.", labels=["status"])
        counts = status.project_status
        for name in TASK_STATUSES:
            tasks.add_metric([name], getattr(counts, name))
        yield tasks
        workers = GaugeMetricFamily(
            "pm_agent_workers", "Registered workers by status (offline: not seen lately).", labels=["status"]
        )
        for name in WORKER_STATUSES:
            workers.add_metric([name], getattr(status.workers, name))
        yield workers
        store = self._board.store
        ready, held = store.ready_counts(), store.in_progress_counts()
        ready_tasks = GaugeMetricFamily(
            "pm_agent_ready_tasks",
            "Tasks offerable now (todo, no pending dependency) per skill signature: the task's required "
            "skills, lower-cased, sorted, comma-joined.",
            labels=["skills"],
        )
        held_tasks = GaugeMetricFamily(
            "pm_agent_in_progress_tasks",
            "Tasks held by a worker now, per skill signature (as pm_agent_ready_tasks).",
            labels=["skills"],
        )
        known = [row["sig"] for row in store.skill_sigs()]
        seen = set(known)
        sigs = known + sorted((set(ready) | set(held)) - seen)
        shown: list[tuple[str, str]] = []
        other_ready = other_held = folded = 0
        for sig in sigs:
            label = skills_label(sig)
            if label is None or len(shown) >= self.max_skill_sets:
                other_ready += ready.get(sig, 0)
                other_held += held.get(sig, 0)
                folded += 1
            else:
                shown.append((label, sig))
        for label, sig in sorted(shown):
            ready_tasks.add_metric([label], ready.get(sig, 0))
            held_tasks.add_metric([label], held.get(sig, 0))
        if folded:
            ready_tasks.add_metric([OTHER], other_ready)
            held_tasks.add_metric([OTHER], other_held)
        yield ready_tasks
        yield held_tasks
        yield GaugeMetricFamily(
            "pm_agent_skill_sets",
            f"Distinct skill signatures on the board; beyond the first PM_METRICS_MAX_SKILL_SETS "
            f'({self.max_skill_sets}) they are summed in skills="{OTHER}".',
            value=len(sigs),
        )
        yield GaugeMetricFamily(
            "pm_agent_long_poll_waiters",
            "request_next_task calls of this process waiting for work right now.",
            value=self._waiters(),
        )


class BoardMetrics:
    """Every metric of one stub process, on its own registry (several stubs may share a process)."""

    def __init__(
        self, board: Board, waiters: Callable[[], int], *, max_skill_sets: int = MAX_SKILL_SETS
    ) -> None:
        self.board = board
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.assignments = Counter("pm_agent_task_assignments", "Tasks handed to a worker.", registry=reg)
        self.completions = Counter("pm_agent_task_completions", "Tasks marked done.", registry=reg)
        self.expiries = Counter(
            "pm_agent_lease_expiries",
            "Leases that expired (the task went back or was blocked).",
            registry=reg,
        )
        self.fencings = Counter(
            "pm_agent_fencings",
            "Calls refused with not_task_holder (a stale holder fenced off).",
            registry=reg,
        )
        self.blockers = Counter(
            "pm_agent_blockers", "Blockers recorded, by severity.", labelnames=["severity"], registry=reg
        )
        self.releases = Counter("pm_agent_task_releases", "Tasks given back by their holder.", registry=reg)
        self.resolutions = Counter(
            "pm_agent_blocker_resolutions",
            "resolve_blocker calls (dashboard, CLI in this process, MCP).",
            registry=reg,
        )
        self.loaded = Counter("pm_agent_tasks_loaded", "Tasks added from project files.", registry=reg)
        self.reruns = Counter(
            "pm_agent_task_reruns",
            "Done or blocked tasks put back in the queue for a fresh run.",
            registry=reg,
        )
        self.deregistrations = Counter(
            "pm_agent_agent_deregistrations",
            "Workers that said they were stopping (deregister_agent).",
            registry=reg,
        )
        self.forgotten = Counter(
            "pm_agent_agents_forgotten",
            "Registrations removed (not seen for PM_AGENT_FORGET_SECONDS, or room made under PM_MAX_AGENTS).",
            registry=reg,
        )
        self.tool_seconds = Histogram(
            "pm_agent_tool_call_duration_seconds",
            "MCP tool calls by tool, start to answer (request_next_task includes its long-poll wait).",
            labelnames=["tool"],
            buckets=TOOL_BUCKETS,
            registry=reg,
        )
        self.tool_errors = Counter(
            "pm_agent_tool_call_errors",
            "MCP tool calls answered with an error, by tool and error code.",
            labelnames=["tool", "error"],
            registry=reg,
        )
        self.pickup_seconds = Histogram(
            "pm_agent_task_pickup_latency_seconds",
            "From a task becoming offerable (loaded, requeued, last dependency done) to its assignment.",
            buckets=PICKUP_BUCKETS,
            registry=reg,
        )
        info = Gauge("pm_agent_build_info", "The stub's version.", labelnames=["version"], registry=reg)
        info.labels(__version__).set(1)
        for severity in SEVERITIES:
            self.blockers.labels(severity)
        for tool in TOOLS_BY_NAME:
            self.tool_seconds.labels(tool)
        reg.register(BoardGauges(board, waiters, max_skill_sets))
        ProcessCollector(registry=reg)
        GCCollector(registry=reg)
        self._pending: deque[BoardEvent] = deque(maxlen=MAX_PENDING_PICKUPS)
        self._drain_scheduled = False
        self._counters: dict[str, Callable[[BoardEvent], Any]] = {
            "assigned": self._assigned,
            "completed": lambda e: self.completions.inc(),
            "expired": lambda e: self.expiries.inc(),
            "fenced": lambda e: self.fencings.inc(),
            "blocked": lambda e: self.blockers.labels(self._severity(e)).inc(),
            "released": lambda e: self.releases.inc(),
            "resolved": lambda e: self.resolutions.inc(),
            "loaded": lambda e: self.loaded.inc(int(e.detail.get("added", 0))),
            "rerun": lambda e: self.reruns.inc(),
            "deregistered": lambda e: self.deregistrations.inc(),
            "forgotten": lambda e: self.forgotten.inc(),
        }
        board.add_listener(self.on_commit)

    # ------------------------------------------------------------------ counters (commit listener)

    def on_commit(self, commit: Commit) -> None:
        """Count the commit's events; no SQL (the pickup reads wait for `_drain_pickups`)."""
        for event in commit.events:
            count = self._counters.get(event.kind)
            if count is not None:
                count(event)

    @staticmethod
    def _severity(event: BoardEvent) -> str:
        severity = str(event.detail.get("severity", "medium"))
        return severity if severity in SEVERITIES else "medium"

    def _assigned(self, event: BoardEvent) -> None:
        self.assignments.inc()
        self._pending.append(event)
        if self._drain_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a CLI process): drained at the next scrape
        self._drain_scheduled = True
        loop.call_soon(self.drain_pickups)

    def drain_pickups(self) -> None:
        """Observe the pickup latency of each assignment heard since the last drain (one indexed read each)."""
        self._drain_scheduled = False
        while self._pending:
            event = self._pending.popleft()
            if event.task_id is None:
                continue
            try:
                since = self.board.store.offerable_since(event.task_id, event.at)
            except Exception:
                log.exception("pickup_read_failed", task_id=event.task_id)
                continue
            if since is not None:
                self.pickup_seconds.observe(max(0.0, event.at - since))

    # ------------------------------------------------------------------ tool calls

    def tool_called(self, name: str, seconds: float, answer: mcp_types.CallToolResult) -> None:
        """Time one MCP tool call; unknown tool names share one label value (no label explosion)."""
        tool = name if name in TOOLS_BY_NAME else "unknown"
        self.tool_seconds.labels(tool).observe(seconds)
        if answer.is_error:
            code = (answer.structured_content or {}).get("error")
            self.tool_errors.labels(tool, code if code in ERROR_CODES else "other").inc()

    # ------------------------------------------------------------------ exposition

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the scraper asked for (text 0.0.4 by default); (body, content type)."""
        self.drain_pickups()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
