"""A griffe docstring, parsed in whatever style it is written (Google, NumPy, Sphinx), as plain data.

Runs in the parser child, next to :mod:`documentation_worker.extract`. griffe's ``auto``
parser picks the style per docstring; a docstring it cannot parse stays one text section,
as written (a reader still gets every word).
"""

from __future__ import annotations

from typing import Any

import griffe

from documentation_worker.apidoc import DocItem, DocSection

__all__ = ["docstring_sections"]


def docstring_sections(docstring: griffe.Docstring | None) -> tuple[DocSection, ...]:
    """The sections of ``docstring`` (empty for none)."""
    if docstring is None or not docstring.value.strip():
        return ()
    try:
        parsed = docstring.parse(griffe.Parser.auto)
    except Exception:
        return (DocSection("text", text=docstring.value),)
    return tuple(section for raw in parsed if (section := _section(raw)) is not None)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _section(raw: griffe.DocstringSection) -> DocSection | None:
    kind = raw.kind.value
    value = raw.value
    if isinstance(raw, griffe.DocstringSectionText):
        return DocSection(kind, raw.title, text=str(value))
    if isinstance(raw, griffe.DocstringSectionExamples):
        return DocSection(kind, raw.title, text="\n\n".join(text for _, text in value))
    if isinstance(raw, griffe.DocstringSectionAdmonition):
        title = raw.title or _text(value.kind) or "Note"
        return DocSection(kind, title, text=value.contents)
    if isinstance(raw, griffe.DocstringSectionDeprecated):
        version = _text(value.version)
        return DocSection(kind, raw.title, text=(f"{version}: " if version else "") + value.description)
    if isinstance(value, list):
        items = tuple(
            DocItem(
                name=str(getattr(element, "name", "") or ""),
                annotation=_text(getattr(element, "annotation", None)),
                description=str(getattr(element, "description", "") or ""),
            )
            for element in value
        )
        return DocSection(kind, raw.title, items=items) if items else None
    return DocSection(kind, raw.title, text=str(value)) if value else None
