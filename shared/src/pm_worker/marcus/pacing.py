"""Marcus's clock: its lease timings, how often to renew, and how long to wait for work.

Read from Marcus 0.3.8's `src/core/assignment_lease.py` (and measured, docs/marcus.md):
an assignment holds 180 s until the first progress report, then 240 s (progress < 25 %),
300 s (25-75 %) or 360 s (>= 75 %); 60 s of grace (90 s from 75 %); a monitor sweeps
every 60 s. Any tool call that names the agent renews its lease. So a worker that stops
calling loses its task 240-360 s after its last call (up to ~510 s late in a task;
measured: 363 s), and another agent of the project gets it.

Marcus has no long-poll: "no task" comes with `retry_after_seconds` (30 in 0.3.8, by
design at most 300). We wait at least that long, plus jitter so replicas started together
do not ask in lock-step; pickup latency on an idle Marcus is therefore up to ~36 s.
"""

from __future__ import annotations

import random

FIRST_LEASE_SECONDS = 180.0
"""The lease before the first progress report (Marcus's phase 1): the shortest window."""
LEASE_GRACE_SECONDS = 60.0
MONITOR_SWEEP_SECONDS = 60.0
KEEPALIVE_SECONDS = 90.0
"""Renew with a progress report after this much silence: half the shortest lease, so one
lost report still leaves a second chance before the lease ends. Any report resets it."""
RESUME_SAFE_SECONDS = FIRST_LEASE_SECONDS - 15.0
"""A restarted worker whose last call on its task is younger than this still holds it for sure."""
DEFAULT_RETRY_SECONDS = 30.0
"""What Marcus 0.3.8 always answers as `retry_after_seconds`."""
MAX_RETRY_SECONDS = 300.0
"""Marcus documents its hint as at most 300 s; a larger one is treated as this."""
JITTER_FRACTION = 0.2
MAX_JITTER_SECONDS = 10.0


def retry_delay(hint: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before asking again: never less than the hint, at most 20 % (10 s) more."""
    base = DEFAULT_RETRY_SECONDS if hint is None or hint <= 0 else min(float(hint), MAX_RETRY_SECONDS)
    spread = min(base * JITTER_FRACTION, MAX_JITTER_SECONDS)
    return base + (rng or random).uniform(0.0, spread)


def keepalive_due(seconds_since_last_report: float) -> bool:
    """True when the held task's lease should be renewed now."""
    return seconds_since_last_report >= KEEPALIVE_SECONDS


def surely_still_held(seconds_since_last_call: float) -> bool:
    """True when no lease Marcus gives can have run out since our last call on the task."""
    return 0 <= seconds_since_last_call < RESUME_SAFE_SECONDS
