"""The YAML project file: parsed and checked whole before anything touches the board.

Every refusal is one line: `<file>: task '<id>' field '<field>': <problem>` for a task,
`<file>: <problem>` for the file as a whole (YAML syntax, size, aliases), so the person
fixing it knows where to look. Checks that need the board (a dependency already loaded
earlier) run in the board's load transaction; everything else is decided here from the
file alone.

A project file is data from whoever may load one, so the YAML is read defensively: at most
`MAX_PROJECT_FILE_BYTES` and `MAX_PROJECT_FILE_NODES` values (counted on libyaml's event
stream before anything is built), no aliases (nine levels of ten-fold aliases in 580 bytes
expand to 10^9 values), and a scalar Python cannot build (a 5,000-digit integer, the date
2001-13-45) is a refusal with its line, not a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictStr,
    ValidationError,
    field_validator,
)
from yaml.constructor import ConstructorError

from pm_protocol.args import skill_name
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

MAX_PROJECT_FILE_BYTES = 64 * 1024 * 1024
# Values (scalars, lists, mappings). A 100,000-task file of the usual shape has ~1.15 million
# and takes ~650 MB to load; building a value costs ~350 bytes before any check can run.
MAX_PROJECT_FILE_NODES = 2_000_000
SPLIT_HINT = (
    "split it into several files and load them one after another "
    "(a task may depend on tasks already on the board)"
)

# libyaml's loader is ~5x faster on big boards; same safe semantics.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


class _Loader(_SafeLoader):  # type: ignore[misc]
    """The safe loader, plus: a scalar that cannot be built (or written back as JSON) is a YAML
    error at its line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, _unbuildable(node, str(exc)), node.start_mark) from None
        if type(value) is int and abs(value) >= _INT_LIMIT:  # 0x... escapes the digit limit when read
            raise ConstructorError(None, None, _unbuildable(node, "digits"), node.start_mark)
        return value


_INT_LIMIT = 10 ** sys.get_int_max_str_digits()  # the smallest integer Python will not write


def _unbuildable(node: yaml.Node, reason: str) -> str:
    kind = str(node.tag).rsplit(":", 1)[-1]
    value = str(node.value)
    shown = value if len(value) <= 40 else f"{value[:20]}...({len(value)} characters)"
    if kind == "int" and "digits" in reason:
        reason = f"an integer of more than {sys.get_int_max_str_digits()} digits, which Python does not read or write"
    return f"cannot read the {kind} {shown}: {reason}; quote it to keep it as text"


Skill = Annotated[StrictStr, Field(min_length=1, max_length=MAX_SKILL_LEN), AfterValidator(skill_name)]
Label = Annotated[StrictStr, Field(min_length=1, max_length=MAX_SKILL_LEN)]


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
    labels: Annotated[list[Label], Field(max_length=MAX_SKILLS)] = []
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


def _fail(label: str, problem: str, *, task: str | None = None, field: str | None = None) -> ProjectFileError:
    """`<file>: task '<id>' field '<field>': <problem>`, leaving out what does not apply."""
    where = " ".join(
        part for part in (f"task '{task}'" if task else "", f"field '{field}'" if field else "") if part
    )
    return ProjectFileError(f"{label}: {where}: {problem}" if where else f"{label}: {problem}")


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
    problem = (
        "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    )
    if err["type"] == "literal_error" and loc[-1:] == ["priority"]:
        problem = f"unknown priority {err.get('input')!r}; use low, medium, high or urgent"
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        task = _task_label(raw, loc[1])
        field = str(loc[2]) if len(loc) > 2 else None
        if field is not None and len(loc) > 3 and isinstance(loc[3], int):
            field += f"[{loc[3]}]"
        return _fail(label, problem, task=task, field=field)
    return _fail(label, problem, field=".".join(str(p) for p in loc) or None)


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


def _screen(text: str, label: str) -> None:
    """Refuse aliases and too many values on the event stream, before any value is built."""
    nodes = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _fail(
                label,
                f"{_at(event.start_mark)}: YAML aliases (*{event.anchor}) are not accepted in project "
                "files (a few of them can expand into billions of values); write the value out in full",
            )
        if isinstance(event, _NODE_EVENTS):
            nodes += 1
            if nodes > MAX_PROJECT_FILE_NODES:
                raise _fail(
                    label,
                    f"more than {MAX_PROJECT_FILE_NODES:,} values (the limit, reached at "
                    f"{_at(event.start_mark)}); {SPLIT_HINT}",
                )


def _at(mark: Any) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, ConstructorError) and mark is not None:
        return f"{_at(mark)}: {problem}"  # the YAML is fine; one of its values is not
    where = f" at {_at(mark)}" if mark is not None else ""
    return f"YAML syntax error{where}: {problem}"


def parse_project(text: str, label: str) -> ProjectSpec:
    """Parse and check a project file's text; raise ProjectFileError with the one-line reason."""
    if len(text) > MAX_PROJECT_FILE_BYTES:
        raise _fail(label, f"the file is larger than {MAX_PROJECT_FILE_BYTES // 2**20} MiB; {SPLIT_HINT}")
    try:
        _screen(text, label)
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _fail(label, _yaml_problem(exc)) from None
    return check_project(raw, label)


def check_project(raw: Any, label: str) -> ProjectSpec:
    """Check an already-parsed project document (a dict as YAML would give)."""
    if raw is None or raw == {} or (isinstance(raw, dict) and raw.get("tasks") in (None, [])):
        raise _fail(label, "the file has no tasks; expected `tasks:` with a list of tasks", field="tasks")
    if not isinstance(raw, dict):
        raise _fail(label, f"expected a mapping with `project:` and `tasks:`, got {type(raw).__name__}")
    try:
        spec = ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation_error(label, raw, exc) from None
    seen: set[str] = set()
    for task in spec.tasks:
        if task.id in seen:
            raise _fail(label, "duplicate id; every task id must be unique", task=task.id, field="id")
        seen.add(task.id)
    for task in spec.tasks:
        if task.id in task.dependencies:
            raise _fail(label, "a task cannot depend on itself", task=task.id, field="dependencies")
        if len(set(task.dependencies)) != len(task.dependencies):
            raise _fail(label, "a dependency is listed twice", task=task.id, field="dependencies")
    cycle = _find_cycle(spec.tasks)
    if cycle is not None:
        raise _fail(label, "dependency cycle: " + " -> ".join(cycle), task=cycle[0], field="dependencies")
    return spec


def load_project_file(path: Path | str) -> ProjectSpec:
    """Read and check a project file from disk (at most MAX_PROJECT_FILE_BYTES of it)."""
    label = str(path)
    try:
        with Path(path).open("rb") as fh:  # read bounded: the path may be /dev/zero or a growing log
            data = fh.read(MAX_PROJECT_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(label, _unreadable(Path(path), exc)) from None
    if len(data) > MAX_PROJECT_FILE_BYTES:
        raise _fail(label, f"the file is larger than {MAX_PROJECT_FILE_BYTES // 2**20} MiB; {SPLIT_HINT}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(label, "the file is not UTF-8 text") from None
    return parse_project(text, label)


def _unreadable(path: Path, exc: OSError) -> str:
    """Why the file cannot be read; when it is missing, where the stub looked and how to pass it."""
    reason = f"cannot read the file: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError):
        return (
            f"{reason}. The stub looked for {path.absolute()} in its own filesystem; under Docker "
            "Compose that is the pm-agent container's, not your host's: mount the file "
            '(`volumes: ["./fleet.yaml:/project/fleet.yaml:ro"]`, PM_PROJECT_FILE=/project/fleet.yaml) '
            "or, better, load it from your host into the running stub: `make load FILE=fleet.yaml` "
            "(`python -m pm_agent_stub load fleet.yaml`, which sends the file's text)"
        )
    if isinstance(exc, PermissionError):
        return f"{reason}. The stub runs as uid {os.getuid()}; make the file readable to it (chmod a+r)"
    return reason
