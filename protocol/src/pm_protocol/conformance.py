"""Does a JSON answer have exactly the shape a result model declares?

Result models keep unknown fields (a newer server may add some), so validating alone would
let a server send fields the contract never declared. `problems()` reports those too,
recursively; the contract tests run it on every tool's answer from the real stub.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation may hold (X, X | None, list[X])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, list):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _undeclared(model: type[BaseModel], value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{where}.{key}: not declared by {model.__name__}")
            continue
        for sub in _models_in(field.annotation):
            items = item if isinstance(item, list) else [item]
            for i, element in enumerate(items):
                suffix = f"[{i}]" if isinstance(item, list) else ""
                found.extend(_undeclared(sub, element, f"{where}.{key}{suffix}"))
    return found


def problems(model: type[BaseModel], value: Any) -> list[str]:
    """Validation errors plus undeclared fields; empty when `value` is exactly the model's shape."""
    found: list[str] = []
    try:
        model.model_validate(value)
    except ValidationError as exc:
        found.extend(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    found.extend(_undeclared(model, value, model.__name__))
    return found
