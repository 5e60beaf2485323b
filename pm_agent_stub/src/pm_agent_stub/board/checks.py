"""Load-time checks of a task against the workers that could take it (docs/protocol.md, "Load-time checks").

A task is offered only to an agent that has every skill it requires, and that agent's
worker then reads its payload. Two mistakes used to pass silently: a misspelt skill
(`tests`) left the task `todo` forever, and a test task without `required_skills` went to
whichever worker asked first (the documentation worker wrote API docs for it and said
done). So, for each task, against its *takers* — the known worker roles
(`pm_protocol.roles`) plus every agent registered on this board:

- refused: the payload has keys that no taker able to take the task accepts (the key is
  named, with what the likely worker accepts). Only when every such taker's payload is
  known: an agent of a role the table does not know may accept anything;
- warned: a required skill no taker has, required skills no single taker has together,
  and a task without required skills that more than one kind of worker would take.

Each warning reads `<what>: <why and what to do>`; `status` shows the part before the colon.
Warnings are computed, not stored: the same function answers at load time (the CLI prints
them) and whenever the board is shown (`status`, `show`), so a warning goes away once a
worker with the missing skill registers.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pm_protocol.roles import ROLES, ROLES_BY_NAME


@dataclass(frozen=True)
class Taker:
    """A kind of worker that could take tasks: a known role, or a registered agent's role."""

    role: str
    skills: frozenset[str]
    payload_keys: frozenset[str] | None  # None: unknown, may accept anything


def takers(registered: Iterable[tuple[str, Sequence[str]]]) -> list[Taker]:
    """The known roles of the default fleet plus each registered (role, lower-cased skills) pair."""
    found: dict[tuple[str, frozenset[str]], Taker] = {}
    for role in ROLES:
        if not role.optional:
            found[(role.name, role.skills)] = Taker(role.name, role.skills, role.payload_keys)
    for role_name, skills in registered:
        known = ROLES_BY_NAME.get(role_name)
        key = (role_name, frozenset(skills))
        found.setdefault(key, Taker(role_name, key[1], known.payload_keys if known else None))
    return list(found.values())


def _every_skill() -> set[str]:
    return {s for role in ROLES for s in role.skills}


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The closest choice, if one is close; a shared start counts extra (`tests` -> `testing`, not `pytest`)."""

    def score(choice: str) -> float:
        same_start = choice[:3] == word[:3]
        return difflib.SequenceMatcher(None, word, choice).ratio() + (0.2 if same_start else 0.0)

    ranked = sorted(((score(c), c) for c in set(choices) if c != word), reverse=True)
    return f" (did you mean '{ranked[0][1]}'?)" if ranked and ranked[0][0] >= 0.6 else ""


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))


def payload_refusal(
    required_skills: Sequence[str], payload: Mapping[str, Any], pool: Sequence[Taker]
) -> str | None:
    """Why the payload fits no worker that may take the task, naming the key; None if it fits one."""
    need = {s.lower() for s in required_skills}
    able = [t for t in pool if need <= t.skills]
    if not able or any(t.payload_keys is None for t in able):
        return None
    keys = set(payload)
    if any(keys <= (t.payload_keys or frozenset()) for t in able):
        return None
    parts = []
    for taker in sorted(able, key=lambda t: t.role):
        accepted = taker.payload_keys or frozenset()
        unknown = sorted(keys - accepted)
        quoted = ", ".join(f"'{k}'" for k in unknown)
        parts.append(
            f"the {taker.role} worker does not accept {quoted}{_did_you_mean(unknown[0], accepted)} "
            f"(it accepts: {_names(accepted)})"
        )
    return "; ".join(parts)


def of_row(row: Any, pool: Sequence[Taker]) -> list[str]:
    """`warnings` of a task as the board stores it (its `required_skills` and `payload` columns)."""
    return warnings(json.loads(row["required_skills"]), json.loads(row["payload"]), pool)


def warnings(required_skills: Sequence[str], payload: Mapping[str, Any], pool: Sequence[Taker]) -> list[str]:
    """What to tell the operator about who may take this task (empty when all is well)."""
    need = {s.lower() for s in required_skills}
    have = set().union(*(t.skills for t in pool)) if pool else set()
    found: list[str] = []
    missing = sorted(need - have)
    for skill in missing:
        found.append(
            f"no worker has skill '{skill}'{_did_you_mean(skill, have | _every_skill())}: no registered "
            "worker and no known worker role has it, so the task waits until such a worker registers"
        )
    if need and not missing and not any(need <= t.skills for t in pool):
        found.append(
            f"no worker has all of the skills {_names(need)}: the task waits until one that has them "
            "all together registers"
        )
    if not need:
        roles = sorted({t.role for t in pool})
        if len(roles) > 1:
            keys = set(payload)
            fits = sorted({t.role for t in pool if t.payload_keys is None or keys <= t.payload_keys})
            known_fits = [r for r in fits if r in ROLES_BY_NAME and ROLES_BY_NAME[r].payload_keys is not None]
            advice = ""
            if keys and len(known_fits) == 1:
                advice = (
                    f"; its payload fits the {known_fits[0]} worker: add "
                    f"required_skills: [{ROLES_BY_NAME[known_fits[0]].first_skill}]"
                )
            found.append(
                f"no required_skills: whichever worker asks first takes it ({_names(roles)}){advice}"
            )
    return found
