"""One griffe object as one :mod:`~documentation_worker.apidoc` object: signatures, kinds, values.

Runs in the parser child, for :mod:`documentation_worker.extract`.
"""

from __future__ import annotations

from typing import Any

import griffe

from documentation_worker.apidoc import FunctionDoc, VariableDoc
from documentation_worker.docsections import docstring_sections

__all__ = [
    "Member",
    "docstring_of",
    "final_target",
    "function_doc",
    "is_special",
    "kind_of",
    "named_object",
    "property_doc",
    "signature",
    "text_of",
    "variable_doc",
]

Member = griffe.Object | griffe.Alias


def is_special(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def final_target(member: Member) -> griffe.Object | None:
    """What ``member`` finally stands for (itself if it is no alias); None if that is outside the package."""
    if not member.is_alias:
        return member  # type: ignore[return-value]
    try:
        target = member.final_target  # type: ignore[union-attr]
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return target if isinstance(target, griffe.Object) else None


def named_object(attr: griffe.Attribute, module: griffe.Module) -> griffe.Object | None:
    """The function or class of this module an unannotated ``name = other`` attribute names."""
    if attr.annotation is not None or not isinstance(attr.value, griffe.ExprName):
        return None
    other = module.members.get(attr.value.name)
    if other is None or other is attr:
        return None
    target = final_target(other)
    return target if isinstance(target, (griffe.Function, griffe.Class)) else None


def docstring_of(obj: griffe.Object | griffe.Alias) -> str | None:
    try:
        return obj.docstring.value if obj.docstring is not None else None
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def text_of(value: Any) -> str | None:
    return None if value is None else str(value)


def signature(fn: griffe.Function) -> str:
    """The ``def`` line's parentheses and return annotation, as Python would print them."""
    parts: list[str] = []
    params = list(fn.parameters)
    kinds = griffe.ParameterKind
    starred = any(p.kind is kinds.var_positional for p in params)
    for index, param in enumerate(params):
        kind = param.kind
        first_keyword_only = kind is kinds.keyword_only and (index == 0 or params[index - 1].kind is not kind)
        if first_keyword_only and not starred:
            parts.append("*")  # the bare star before keyword-only parameters
        annotation = text_of(param.annotation)
        prefix = {kinds.var_positional: "*", kinds.var_keyword: "**"}.get(kind, "")
        text = prefix + param.name + (f": {annotation}" if annotation else "")
        if param.default is not None and not prefix:
            text += f" = {param.default}" if annotation else f"={param.default}"
        parts.append(text)
        following = params[index + 1] if index + 1 < len(params) else None
        if kind is kinds.positional_only and (
            following is None or following.kind is not kinds.positional_only
        ):
            parts.append("/")
    returns = text_of(fn.returns)
    return "(" + ", ".join(parts) + ")" + (f" -> {returns}" if returns else "")


def kind_of(labels: set[str]) -> str:
    for label in ("property", "staticmethod", "classmethod"):
        if label in labels:
            return label
    return "async" if "async" in labels else ""


def function_doc(name: str, path: str, fn: griffe.Function, origin: str | None) -> FunctionDoc:
    return FunctionDoc(
        name=name,
        path=path,
        signature=signature(fn),
        decorators=tuple(str(d.value) for d in fn.decorators),
        docstring=docstring_of(fn),
        sections=docstring_sections(fn.docstring),
        is_async="async" in fn.labels,
        kind=kind_of(fn.labels),
        overloads=tuple(signature(o) for o in (fn.overloads or ())),
        lineno=fn.lineno,
        origin=origin,
    )


def property_doc(name: str, path: str, attr: griffe.Attribute) -> FunctionDoc:
    annotation = text_of(attr.annotation)
    return FunctionDoc(
        name=name,
        path=path,
        signature="(self)" + (f" -> {annotation}" if annotation else ""),
        decorators=("property",),
        docstring=docstring_of(attr),
        sections=docstring_sections(attr.docstring),
        kind="property",
        lineno=attr.lineno,
    )


def variable_doc(name: str, path: str, obj: Member, origin: str | None) -> VariableDoc:
    value = text_of(getattr(obj, "value", None))
    if value is not None:
        value = " ".join(value.split())
        value = value if len(value) <= 80 else value[:77] + "..."
    return VariableDoc(
        name=name,
        path=path,
        annotation=text_of(getattr(obj, "annotation", None)),
        value=value,
        docstring=docstring_of(obj),
        sections=docstring_sections(obj.docstring),
        lineno=obj.lineno,
        origin=origin,
    )
