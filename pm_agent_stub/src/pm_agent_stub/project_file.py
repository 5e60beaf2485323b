"""The YAML project file: parsed and checked whole before anything touches the board.

Every refusal reads `<file>: task '<id>' field '<field>': <problem>` so the person fixing it
knows where to look. Checks that need the board (a dependency already loaded earlier) run in
the board's load transaction; everything else is decided here from the file alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictStr,
    ValidationError,
    field_validator,
)

from pm_protocol.limits import (
    MAX_ID,
    MAX_JSON_BYTES,
    MAX_NAME,
    MAX_SKILL_LEN,
    MAX_SKILLS,
    MAX_TEXT,
    TASK_ID_PATTERN,
    json_size,
)

FILE_LEVEL = "-"

# libyaml's loader is ~5x faster on big boards; same safe semantics.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Skill = Annotated[StrictStr, Field(min_length=1, max_length=MAX_SKILL_LEN)]


class ProjectFileError(Exception):
    """A refused project file; the message is the single line shown to the user."""


class TaskSpec(BaseModel):
    """One task as written in the file (unknown fields are an error, not silently dropped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID, pattern=TASK_ID_PATTERN)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]
    description: Annotated[StrictStr, Field(max_length=MAX_TEXT)] = ""
    instructions: Annotated[StrictStr, Field(max_length=MAX_TEXT)] = ""
    priority: Literal["low", "medium", "high", "urgent"] = "medium"
    required_skills: Annotated[list[Skill], Field(max_length=MAX_SKILLS)] = []
    labels: Annotated[list[Skill], Field(max_length=MAX_SKILLS)] = []
    dependencies: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)]], Field(max_length=1000)
    ] = []
    estimated_hours: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)] | None = None
    payload: dict[str, JsonValue] = {}

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if json_size(value) > MAX_JSON_BYTES:
            raise ValueError(f"payload is larger than {MAX_JSON_BYTES} bytes of JSON")
        return value


class ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Annotated[StrictStr, Field(max_length=MAX_NAME)] | None = None
    tasks: list[TaskSpec]


def _fail(label: str, task: str, field: str, problem: str) -> ProjectFileError:
    return ProjectFileError(f"{label}: task '{task}' field '{field}': {problem}")


def _task_label(raw: Any, index: int) -> str:
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    if isinstance(tasks, list) and index < len(tasks):
        item = tasks[index]
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
            return str(item["id"])
    return f"#{index + 1}"


def _from_validation_error(label: str, raw: Any, exc: ValidationError) -> ProjectFileError:
    err = exc.errors()[0]
    loc = list(err["loc"])
    problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error" and loc[-1:] == ["priority"]:
        problem = f"unknown priority {err.get('input')!r}; use low, medium, high or urgent"
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        task = _task_label(raw, loc[1])
        field = str(loc[2]) if len(loc) > 2 else "-"
        if len(loc) > 3 and isinstance(loc[3], int):
            field += f"[{loc[3]}]"
        return _fail(label, task, field, problem)
    return _fail(label, FILE_LEVEL, ".".join(str(p) for p in loc) or "-", problem)


def _find_cycle(tasks: list[TaskSpec]) -> list[str] | None:
    """A dependency cycle among the file's tasks, as a path, or None (iterative DFS)."""
    graph = {t.id: [d for d in t.dependencies] for t in tasks}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    for root in graph:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            deps = graph.get(node, [])
            if i < len(deps):
                stack[-1] = (node, i + 1)
                dep = deps[i]
                if dep not in graph:
                    continue
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, 0))
                    path.append(dep)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def parse_project(text: str, label: str) -> ProjectSpec:
    """Parse and check a project file's text; raise ProjectFileError with the one-line reason."""
    try:
        raw = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _fail(label, FILE_LEVEL, "-", f"YAML syntax error{where}: {problem}") from None
    return check_project(raw, label)


def check_project(raw: Any, label: str) -> ProjectSpec:
    """Check an already-parsed project document (a dict as YAML would give)."""
    if raw is None or raw == {} or (isinstance(raw, dict) and raw.get("tasks") in (None, [])):
        raise _fail(
            label, FILE_LEVEL, "tasks", "the file has no tasks; expected `tasks:` with a list of tasks"
        )
    if not isinstance(raw, dict):
        raise _fail(
            label,
            FILE_LEVEL,
            "-",
            f"expected a mapping with `project:` and `tasks:`, got {type(raw).__name__}",
        )
    try:
        spec = ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation_error(label, raw, exc) from None
    seen: set[str] = set()
    for task in spec.tasks:
        if task.id in seen:
            raise _fail(label, task.id, "id", "duplicate id; every task id must be unique")
        seen.add(task.id)
    for task in spec.tasks:
        if task.id in task.dependencies:
            raise _fail(label, task.id, "dependencies", "a task cannot depend on itself")
        if len(set(task.dependencies)) != len(task.dependencies):
            raise _fail(label, task.id, "dependencies", "a dependency is listed twice")
    cycle = _find_cycle(spec.tasks)
    if cycle is not None:
        raise _fail(label, cycle[0], "dependencies", "dependency cycle: " + " -> ".join(cycle))
    return spec


def load_project_file(path: Path | str) -> ProjectSpec:
    """Read and check a project file from disk."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(label, FILE_LEVEL, "-", f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _fail(label, FILE_LEVEL, "-", "the file is not UTF-8 text") from None
    return parse_project(text, label)
