"""A task's skill signature: its required skills, lower-cased, sorted and distinct.

Tasks are offered by signature (order.py probes the `tasks_ready` index once per signature
an agent satisfies), commits report how many tasks became offerable per signature (txn.py),
and the notifier wakes waiters per signature. The board stores it as a JSON list in
`tasks.skill_sig` (and `skill_sigs.sig`); in memory it is a `Sig` tuple; `label` is the
`"a,b"` form the `pm_agent_ready_tasks{skills=...}` metric uses ("" for none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache

from pm_protocol.limits import dumps

Sig = tuple[str, ...]


def of(skills: Iterable[str]) -> Sig:
    """The signature of these skills (a task's required skills, or an agent's)."""
    return tuple(sorted({s.lower() for s in skills}))


def to_column(sig: Sig) -> str:
    return dumps(list(sig))


@lru_cache(maxsize=4096)
def from_column(text: str) -> Sig:
    """The stored JSON list back as a `Sig` (few distinct signatures: parsed once each)."""
    return tuple(json.loads(text))


def label(sig: Sig) -> str:
    return ",".join(sig)
