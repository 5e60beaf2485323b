"""A corpus of bad project files, each refused whole by `python -m pm_agent_stub load FILE --db DB`.

Refused means: exit code 2, one message on stderr naming the file, the task and the field
(`<file>: task '<id>' field '<field>': <problem>`; `<file>: <problem>` for the file as a
whole), no traceback, and the board byte-for-byte as it was (every table dumped before and
after). The loads run as real CLI processes, in parallel, each on its own copy of a board
that already has tasks, an agent and a live lease. The bombs (issue 17, Medium 8) are also
given to `serve --project`, which must stop with the same line instead of hanging or dying
with a traceback.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import MAX_PROJECT_FILE_BYTES, MAX_PROJECT_FILE_NODES, parse_project
from pm_agent_stub.testing import free_port, run_cli, tasks_yaml
from tests.reliability.boardcheck import dump


@dataclass(frozen=True)
class Bad:
    text: str | bytes
    task: str | tuple[str, ...] | None  # the task the message must name (None: no task)
    field: str | None  # the field the message must name (None: no field)
    problem: str  # a fragment of the problem, lower case
    size: int = 0  # extend the file (sparse) to this many bytes


def _laughs() -> str:
    """Nine levels of ten-fold aliases in ~570 bytes: 10^9 strings once expanded."""
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "tasks:\n  - id: t1\n    name: Bomb\n    payload:\n" + "".join(f"      {lv}\n" for lv in levels)


def _prefixes(path: Path, bad: Bad) -> list[str]:
    """The start the refusal line must have, for each task it may name."""
    tasks = bad.task if isinstance(bad.task, tuple) else (bad.task,)
    out = []
    for task in tasks:
        parts = [f"task '{task}'" if task else "", f"field '{bad.field}'" if bad.field else ""]
        where = " ".join(p for p in parts if p)
        out.append(f"{path}: {where}: " if where else f"{path}: ")
    return out


GOOD = "  - {id: ok-1, name: Fine task}\n"
CORPUS: dict[str, Bad] = {
    "yaml syntax error": Bad(
        "project: p\ntasks:\n  - id: a\n    name: [unclosed\n", None, None, "yaml syntax error"
    ),
    "tab indentation": Bad("project: p\ntasks:\n\t- id: a\n", None, None, "yaml syntax error"),
    "billion laughs (aliases)": Bad(
        _laughs(), None, None, "line 6 column 16: yaml aliases (*a0) are not accepted"
    ),
    "merge key (an alias)": Bad(
        "tasks:\n  - &t {id: a, name: A}\n  - {<<: *t, id: b}\n",
        None,
        None,
        "yaml aliases (*t) are not accepted",
    ),
    "integer of 5,000 digits": Bad(
        "tasks:\n  - {id: a, name: A, payload: {n: " + "9" * 5000 + "}}\n",
        None,
        None,
        "line 2 column 35: cannot read the int",
    ),
    "impossible date": Bad(
        "tasks:\n  - {id: a, name: 2001-13-45}\n", None, None, "cannot read the timestamp 2001-13-45"
    ),
    "too many values": Bad(
        "tasks:\n  - {id: a, name: A, payload: {x: [" + "1," * MAX_PROJECT_FILE_NODES + "1]}}\n",
        None,
        None,
        "more than 2,000,000 values",
    ),
    "over 64 mib": Bad(
        "tasks:\n", None, None, "larger than 64 mib; split it", size=MAX_PROJECT_FILE_BYTES + 1
    ),
    "unknown task field": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, colour: red}\n", "a", "colour", "unknown field"
    ),
    "unknown top-level field": Bad("owner: me\ntasks:\n" + GOOD, None, "owner", "unknown field"),
    "cycle": Bad(
        "tasks:\n  - {id: a, name: A, dependencies: [c]}\n  - {id: b, name: B, dependencies: [a]}\n"
        "  - {id: c, name: C, dependencies: [b]}\n",
        ("a", "b", "c"),
        "dependencies",
        "cycle",
    ),
    "self dependency": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [a]}\n", "a", "dependencies", "itself"
    ),
    "unknown dependency": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [ghost]}\n",
        "a",
        "dependencies",
        "unknown dependency 'ghost'",
    ),
    "duplicate id": Bad("tasks:\n  - {id: a, name: A}\n  - {id: a, name: Again}\n", "a", "id", "duplicate"),
    "duplicate id with a board task": Bad(
        "tasks:\n  - {id: a, name: A}\n  - {id: board-1, name: X}\n  - {id: a, name: B}\n",
        "a",
        "id",
        "duplicate",
    ),
    "hours not a number": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: two}\n", "a", "estimated_hours", "number"
    ),
    "hours negative": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: -1}\n", "a", "estimated_hours", "greater than"
    ),
    "hours infinite": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: .inf}\n", "a", "estimated_hours", "finite"
    ),
    "hours nan": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: .nan}\n", "a", "estimated_hours", "finite"
    ),
    "skills a string": Bad(
        "tasks:\n  - {id: a, name: A, required_skills: testing}\n", "a", "required_skills", "list"
    ),
    "skill a number": Bad(
        "tasks:\n  - {id: a, name: A, required_skills: [7]}\n", "a", "required_skills[0]", "string"
    ),
    "name a number": Bad("tasks:\n  - {id: a, name: 5}\n", "a", "name", "string"),
    "name missing": Bad("tasks:\n  - {id: a}\n", "a", "name", "required"),
    "dependencies a string": Bad(
        "tasks:\n  - {id: a, name: A, dependencies: b}\n", "a", "dependencies", "list"
    ),
    "payload a list": Bad("tasks:\n  - {id: a, name: A, payload: [1, 2]}\n", "a", "payload", "dictionary"),
    "payload with infinity": Bad(
        "tasks:\n  - {id: a, name: A, payload: {x: .inf}}\n", "a", "payload", "nan or infinity"
    ),
    "unknown priority": Bad(
        "tasks:\n  - {id: a, name: A, priority: critical}\n", "a", "priority", "unknown priority 'critical'"
    ),
    "id with a space": Bad("tasks:\n  - {id: has space, name: A}\n", "has space", "id", "pattern"),
    "id too long": Bad("tasks:\n  - {id: " + "x" * 201 + ", name: A}\n", "x" * 201, "id", "at most 200"),
    "task not a mapping": Bad("tasks:\n  - just-a-string\n", "#1", None, "dictionary"),
    "tasks not a list": Bad("tasks: {a: 1}\n", None, "tasks", "list"),
    "empty file": Bad("", None, "tasks", "no tasks"),
    "only a comment": Bad("# nothing here\n", None, "tasks", "no tasks"),
    "empty task list": Bad("project: p\ntasks: []\n", None, "tasks", "no tasks"),
    "not a mapping (list)": Bad("- a\n- b\n", None, None, "expected a mapping"),
    "not a mapping (scalar)": Bad("just some words\n", None, None, "expected a mapping"),
    "not utf-8": Bad(b"tasks:\n  - {id: a, name: \xff\xfe}\n", None, None, "not utf-8"),
}


def _seed(db: Path) -> None:
    """A board with history: tasks (one with a dependency), an agent, a live lease and a progress row."""
    board = Board(connect(db), lease_seconds=3600)
    spec = parse_project(
        tasks_yaml(
            {"id": "board-1", "name": "On the board", "required_skills": ["x"]},
            {"id": "board-2", "name": "Depends", "required_skills": ["x"], "dependencies": ["board-1"]},
        ),
        "seed.yaml",
    )
    board.load_project(spec, "seed.yaml")
    board.register_agent("seed-agent", "Seed", "role", ["x"])
    board.request_next_task("seed-agent")
    board.report_task_progress("seed-agent", "board-1", "in_progress", 10, "started", {"step": 1})
    board.conn.close()


@dataclass
class Outcome:
    path: Path
    result: CompletedProcess[str]
    before: dict[str, list[tuple[object, ...]]]
    after: dict[str, list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every corpus file loaded by the real CLI (4 at a time), each on its own copy of the seeded board."""
    root = tmp_path_factory.mktemp("bad-files")
    seed = root / "seed.db"
    _seed(seed)

    def one(index: int, name: str) -> tuple[str, Outcome]:
        db = root / f"board-{index}.db"
        shutil.copy(seed, db)
        path = root / f"bad file {index}.yaml"  # a space in the name, to check it is shown whole
        bad = CORPUS[name]
        if isinstance(bad.text, bytes):
            path.write_bytes(bad.text)
        else:
            path.write_text(bad.text, encoding="utf-8")
        if bad.size:
            with path.open("r+b") as fh:
                fh.truncate(bad.size)
        before = dump(db)
        result = run_cli("load", str(path), "--db", str(db), timeout=120)
        return name, Outcome(path, result, before, dump(db))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(lambda item: one(*item), enumerate(sorted(CORPUS))))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_file_is_refused_whole(outcomes: dict[str, Outcome], name: str) -> None:
    bad, outcome = CORPUS[name], outcomes[name]
    err = outcome.result.stderr
    assert outcome.result.returncode == 2, (outcome.result.returncode, err)
    line = next((ln for ln in err.splitlines() if ln.startswith(f"{outcome.path}: ")), None)
    assert line is not None, f"no '<file>: ...' line naming {outcome.path} in:\n{err}"
    assert any(line.startswith(prefix) for prefix in _prefixes(outcome.path, bad)), line
    if bad.task is None:
        assert "task '" not in line, line  # a file-level problem names no task
    assert bad.problem in line.lower(), line
    assert "Traceback" not in err, err
    assert outcome.after == outcome.before, "a refused file changed the board"


BOMBS = ("billion laughs (aliases)", "integer of 5,000 digits")  # the two; the rest share their path


@pytest.mark.parametrize("name", BOMBS)
def test_serve_refuses_a_bomb_at_start(tmp_path: Path, name: str) -> None:
    """`serve --project` stops at once with the same line (it hung, or died with a traceback)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(str(CORPUS[name].text), encoding="utf-8")
    db = str(tmp_path / "b.db")
    result = run_cli("serve", "--port", str(free_port()), "--db", db, "--project", str(path), timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert f"{path}: " in result.stderr
    assert CORPUS[name].problem in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_serve_with_a_missing_project_file_says_where_it_looked(tmp_path: Path) -> None:
    """Issue 12: a host path given to a stub in a container; the message says what to do."""
    missing = tmp_path / "src" / "myproj" / "fleet.yaml"
    db = str(tmp_path / "b.db")
    result = run_cli(
        "serve", "--port", str(free_port()), "--db", db, env={"PM_PROJECT_FILE": str(missing)}, timeout=120
    )
    assert result.returncode == 2, result.stderr[-2000:]
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith(f"{missing}: "))
    assert line.startswith(f"{missing}: cannot read the file: No such file or directory."), line
    assert f"looked for {missing}" in line
    assert "container" in line
    assert "docker compose exec -T pm-agent python -m pm_agent_stub load /dev/stdin" in line
    assert "task '" not in line
    assert "Traceback" not in result.stderr


def test_good_file_does_change_the_board(tmp_path: Path) -> None:
    """The control: the same harness sees a change when a file is good (so 'unchanged' means something)."""
    db = tmp_path / "board.db"
    _seed(db)
    path = tmp_path / "good.yaml"
    path.write_text("tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [board-1, ok-1]}\n")
    before = dump(db)
    result = run_cli("load", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "loaded 2 new task(s)" in result.stderr
    assert dump(db) != before
