"""A Marcus task's inputs: the fenced `pm-payload` block in its description.

Marcus tasks have no payload field, only a name, a description and labels. A task for our
specialists carries its payload as one fenced block in the description, so a person
reading the task on the board sees exactly what the worker will get:

    Build the API reference for the demo package.

    ```yaml pm-payload
    kind: api
    path: demo-project/src/calc
    output: docs/api
    ```

The info string must contain the word `pm-payload`; `json` before it parses the block as
JSON, anything else as YAML (a JSON object is valid YAML too). The block must hold one
mapping of JSON values. No block gives None: the caller decides (a worker with a
`payload_model` ends such a task in a blocker that says how to add one).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from pydantic import JsonValue, TypeAdapter, ValidationError

MARKER = "pm-payload"
_FENCE = re.compile(
    r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)?(?P=fence)[`~]*[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_JSON_OBJECT: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])

EXAMPLE = "```yaml pm-payload\\npath: src\\n```"


class PayloadError(ValueError):
    """The block is there but unusable; the message says what to fix in the task."""


def _is_payload_block(info: str) -> bool:
    return MARKER in info.strip().lower().split()


def find_blocks(description: str) -> list[tuple[str, str]]:
    """Every `pm-payload` block as (info string, body), in order."""
    return [
        (m["info"].strip(), m["body"])
        for m in _FENCE.finditer(description or "")
        if _is_payload_block(m["info"])
    ]


def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not a JSON number; write the value as a string or a finite number")


def _parse(info: str, body: str) -> Any:
    words = info.lower().split()
    if words and words[0] == "json":
        try:
            return json.loads(body or "{}", parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise PayloadError(
                f"the pm-payload block is not valid JSON: {exc.msg} at line {exc.lineno}"
            ) from None
    try:
        return yaml.safe_load(body) if body.strip() else {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PayloadError(f"the pm-payload block is not valid YAML: {problem}{line}") from None


def _finite(value: Any, path: str = "payload") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"{path} is {value}: NaN and infinity are not JSON numbers")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite(item, f"{path}[{i}]")


def extract_payload(description: str) -> dict[str, JsonValue] | None:
    """The payload in `description`'s `pm-payload` block; None without one; PayloadError if unusable."""
    blocks = find_blocks(description)
    if not blocks:
        return None
    if len(blocks) > 1:
        raise PayloadError(f"the description has {len(blocks)} pm-payload blocks; keep exactly one")
    value = _parse(*blocks[0])
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise PayloadError(
            f"the pm-payload block holds a {type(value).__name__}; it must be a mapping "
            f"of field names to values, e.g. {EXAMPLE}"
        )
    _finite(value)
    try:
        return _JSON_OBJECT.validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "payload"
        raise PayloadError(
            f"the pm-payload block's {key} is not a JSON value ({err['msg']}); "
            "quote dates and other special values as strings"
        ) from None


def missing_payload_message(task_id: str, role: str) -> str:
    """The blocker for a task with no block, for a worker that needs one."""
    return (
        f"Marcus task {task_id} has no pm-payload block, so the {role} worker has no inputs. "
        f"Add a fenced block to the task's description, e.g. {EXAMPLE}, with the fields of "
        f"docs/workers.md#{role}, then move the task back to todo."
    )
