"""Hypothesis-driven calls of every tool over real HTTP to a real stub process.

Each example sends a few calls with arbitrary arguments (wrong types, missing and unknown
fields, huge and odd unicode strings, negative/NaN/infinite/huge numbers, SQL-looking
strings, unknown ids) and one step of a well-behaved agent (register, request, progress
with checkpoint, complete). After every example: the stub is alive, each answer had the
contract's shape (a success, or `{"success": false, "error": <known code>, "message": ...}`
with `isError`), calls built valid were not refused as invalid, and the board's
invariants hold in its own tables.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pm_agent_stub.http_app import MAX_REQUEST_BODY_BYTES
from pm_agent_stub.testing import StubProcess, http_get_json
from tests.reliability.boardcheck import invariant_problems, rows, status_counts
from tests.reliability.rpc import (
    HEADERS,
    call_tool,
    has_lone_surrogate,
    is_parse_error,
    tool_answer,
    tool_body,
)

LIFE_AGENTS = ("fuzz-life-1", "fuzz-life-2")
HELD = "<<task held by the agent>>"  # replaced at call time by the task the agent holds

SQLISH = st.sampled_from(
    [
        "'; DROP TABLE tasks; --",
        '" OR 1=1 --',
        "f001' OR '1'='1",
        "%",
        "_",
        "*",
        "NULL",
        "null",
        "f000; DELETE FROM agents",
        "../../etc/passwd",
        "$(touch /tmp/pwned)",
        "{{7*7}}",
        "fuzz-life-1' --",
    ]
)
ODD_CHARS = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\n", "\t", "💥", "é" * 3, "\uffff"]
)
HUGE = st.sampled_from([200, 201, 10_000, 10_001, 60_000]).flatmap(
    lambda n: st.sampled_from(["x", "é", "💥"]).map(lambda c: c * n)
)
WEIRD_NUMBERS = st.sampled_from(
    [
        -1,
        -0.0,
        0,
        1,
        30,
        30.000001,
        31,
        100,
        100.5,
        101,
        -1e-300,
        1e308,
        -1e308,
        10**30,
        -(10**30),
        2**63,
        float("nan"),
        float("inf"),
        float("-inf"),
    ]
)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    WEIRD_NUMBERS,
    st.text(max_size=30),
    SQLISH,
    ODD_CHARS,
)
ANY_JSON = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
JUNK = st.one_of(
    ANY_JSON, HUGE, SQLISH, ODD_CHARS, st.builds(lambda s, c: s + c, st.text(max_size=5), ODD_CHARS)
)

PRINTABLE = st.characters(categories=("L", "M", "N", "P", "S"), include_characters=" ")
BIG_CHECKPOINT = {"blob": "x" * (256 * 1024 + 10)}


def text(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


AGENT = st.one_of(st.sampled_from(LIFE_AGENTS), st.text(PRINTABLE, min_size=1, max_size=40), SQLISH)
TASK = st.one_of(st.just(HELD), st.integers(0, 299).map(lambda i: f"f{i:03d}"), text(1, 40), SQLISH)
NAME = text(1, 60)
SHOWN_NAME = st.text(PRINTABLE, min_size=1, max_size=60)  # registered names and roles are printable text
# Skill names: printable, no comma (it separates skills), no space at either end (pm_protocol skill_name).
SKILL = st.text(PRINTABLE, min_size=1, max_size=20).filter(lambda s: "," not in s and s == s.strip())
LONG_OK = st.one_of(text(0, 60), st.just("m" * 10_000))
FINITE_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False),
        text(0, 20),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(0, 8), inner, max_size=3),
    max_leaves=6,
)

# tool -> field -> (required, strategy of valid values)
FIELDS: dict[str, dict[str, tuple[bool, st.SearchStrategy[Any]]]] = {
    "register_agent": {
        "agent_id": (True, AGENT),
        "name": (True, SHOWN_NAME),
        "role": (True, SHOWN_NAME),
        "skills": (True, st.lists(st.one_of(st.just("fuzz"), SKILL), max_size=5)),
    },
    "request_next_task": {"agent_id": (True, AGENT), "wait_seconds": (False, st.sampled_from([0, 0.0, 0.1]))},
    "report_task_progress": {
        "agent_id": (True, AGENT),
        "task_id": (True, TASK),
        "status": (True, st.sampled_from(["in_progress", "completed", "blocked"])),
        "progress": (True, st.one_of(st.integers(0, 100), st.floats(0, 100))),
        "message": (True, LONG_OK),
        "checkpoint": (False, FINITE_JSON),
    },
    "report_blocker": {
        "agent_id": (True, AGENT),
        "task_id": (True, TASK),
        "blocker_description": (True, text(1, 80)),
        "severity": (False, st.sampled_from(["low", "medium", "high", "critical"])),
    },
    "get_project_status": {},
    "get_agent_status": {"agent_id": (True, AGENT)},
    "list_registered_agents": {"limit": (False, st.integers(1, 200))},
    "ping": {"echo": (False, st.one_of(st.none(), LONG_OK))},
    "heartbeat": {"agent_id": (True, AGENT)},
    "release_task": {"agent_id": (True, AGENT), "task_id": (True, TASK), "reason": (True, LONG_OK)},
    "log_artifact": {
        "agent_id": (True, AGENT),
        "task_id": (True, TASK),
        "artifact_type": (True, NAME),
        "description": (True, LONG_OK),
        "location": (False, st.one_of(st.none(), text(0, 40))),
        "data": (False, FINITE_JSON),
    },
    "get_task_context": {"task_id": (True, TASK), "limit": (False, st.integers(1, 200))},
    "get_artifact": {"artifact_id": (True, st.integers(1, 10**6))},
    "resolve_blocker": {"task_id": (True, TASK), "resolution": (True, text(0, 40))},
}


@st.composite
def tool_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """(tool, arguments, expectation): "valid" (not refused as invalid), "refused" (invalid_argument) or "any"."""
    if draw(st.integers(0, 19)) == 0:
        return (
            draw(st.one_of(text(0, 30), SQLISH)),
            draw(st.dictionaries(text(0, 8), ANY_JSON, max_size=3)),
            "any",
        )
    name = draw(st.sampled_from(sorted(FIELDS)))
    valid = draw(st.booleans())
    args: dict[str, Any] = {}
    for field, (required, good) in FIELDS[name].items():
        how = "good" if valid else draw(st.sampled_from(["good", "junk", "junk", "missing"]))
        if how == "missing" or (how == "good" and not required and not draw(st.booleans())):
            continue
        args[field] = draw(good) if how == "good" else draw(JUNK)
    if name in ("report_task_progress", "log_artifact") and draw(st.integers(0, 3)) == 0:
        # Valid but for a JSON field that is too big or not JSON at all (NaN/Infinity).
        args = {f: draw(good) for f, (required, good) in FIELDS[name].items() if required}
        args["checkpoint" if name == "report_task_progress" else "data"] = draw(
            st.sampled_from([BIG_CHECKPOINT, {"x": float("nan")}, [1, float("inf")], float("-inf")])
        )
        return name, args, "refused"
    if not valid and draw(st.booleans()):
        args[draw(st.one_of(text(1, 12), SQLISH))] = draw(ANY_JSON)
    return name, args, "valid" if valid else "any"


class Traffic:
    """The calls made and the well-behaved agents' state, read back from the board."""

    def __init__(self, stub: StubProcess) -> None:
        self.stub = stub
        self.client = httpx2.Client(timeout=httpx2.Timeout(40.0, connect=10.0))
        self.calls = 0
        self.completed = 0
        self.codes: dict[str, int] = {}
        self._progress = itertools.count()

    def held(self, agent_id: str) -> str | None:
        if has_lone_surrogate(agent_id):  # not storable text: no board row can name this agent
            return None
        found = rows(
            self.stub.db, "SELECT task_id FROM tasks WHERE holder = ? AND status = 'in_progress'", (agent_id,)
        )
        return found[0]["task_id"] if found else None

    def send(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if isinstance(args, dict) and args.get("task_id") == HELD:
            agent = args.get("agent_id")
            args = {**args, "task_id": (self.held(agent) if isinstance(agent, str) else None) or "f000"}
        body = tool_body(name, args)
        response = self.client.post(self.stub.url, content=body, headers=HEADERS)
        if len(body) > MAX_REQUEST_BODY_BYTES:
            assert response.status_code == 413, (len(body), response.status_code, response.text[:200])
            self.codes["body_too_large"] = self.codes.get("body_too_large", 0) + 1
            return {"success": None, "error": "body_too_large"}
        if has_lone_surrogate([name, args]) and is_parse_error(response):
            self.codes["json_parse_error"] = self.codes.get("json_parse_error", 0) + 1
            return {"success": None, "error": "json_parse_error"}
        answer = tool_answer(response)
        key = "success" if answer["success"] else answer["error"]
        self.codes[key] = self.codes.get(key, 0) + 1
        return answer

    def life_step(self, agent_id: str) -> None:
        """One valid step of a well-behaved agent; each must succeed."""
        registered = rows(self.stub.db, "SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,))
        if not registered:
            answer = self.send(
                "register_agent", {"agent_id": agent_id, "name": "Life", "role": "fuzz", "skills": ["fuzz"]}
            )
            assert answer["success"], answer
            return
        task_id = self.held(agent_id)
        if task_id is None:
            answer = self.send("request_next_task", {"agent_id": agent_id})
            assert answer["success"], answer
            return
        step = next(self._progress)
        if step % 3 != 2:
            answer = self.send(
                "report_task_progress",
                {
                    "agent_id": agent_id,
                    "task_id": task_id,
                    "status": "in_progress",
                    "progress": 50,
                    "message": f"step {step}",
                    "checkpoint": {"step": step, "text": "ü ✓"},
                },
            )
            assert answer.get("status") == "progress_recorded", answer
        else:
            answer = self.send(
                "report_task_progress",
                {
                    "agent_id": agent_id,
                    "task_id": task_id,
                    "status": "completed",
                    "progress": 100,
                    "message": "done",
                },
            )
            assert answer.get("status") == "task_completed", answer
            self.completed += 1

    def check_board(self) -> None:
        status, health = http_get_json(f"{self.stub.base_url}/healthz", timeout=10)
        assert status == 200, (status, health)
        assert self.stub.alive()
        assert invariant_problems(self.stub.db) == []
        # The stub's own counts match its tables (a lease may expire in between: before or after).
        before = status_counts(self.stub.db)
        reported = call_tool(self.client, self.stub.url, "get_project_status", {})["project_status"]
        after = status_counts(self.stub.db)
        assert {k: reported[k] for k in after} in (before, after), (reported, before, after)
        assert reported["total_tasks"] == sum(after.values())


def test_fuzz_every_tool_over_http(fuzz_stub: StubProcess) -> None:
    traffic = Traffic(fuzz_stub)

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(calls=st.lists(tool_calls(), min_size=1, max_size=3), life=st.sampled_from(LIFE_AGENTS))
    def example(calls: list[tuple[str, dict[str, Any], str]], life: str) -> None:
        for name, args, expect in calls:
            answer = traffic.send(name, args)
            if answer["success"] is not None and expect == "valid":
                assert answer.get("error") != "invalid_argument", (name, args, answer)
            if answer["success"] is not None and expect == "refused":
                assert answer.get("error") == "invalid_argument", (
                    "too big, or NaN/Infinity (not JSON)",
                    name,
                    answer,
                )
            traffic.life_step(life)
        traffic.check_board()

    try:
        example()
    finally:
        traffic.client.close()
        print(
            f"\nfuzz: {traffic.calls} tool calls tried; answers by code {traffic.codes}; "
            f"{traffic.completed} tasks completed by the well-behaved agents"
        )
    assert traffic.calls >= 300
    assert traffic.completed > 0
