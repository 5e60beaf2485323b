"""Docstring text as Markdown, and griffe's parsed docstring sections as Markdown.

Pure functions from text to text. Doctest sessions (``>>>``) become ``pycon`` code blocks,
reStructuredText literal blocks (``::`` then an indented block) fenced text, Sphinx roles
(``:func:`x```) inline code; structured sections (parameters, returns, raises, ...) a bold
title and a list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from documentation_worker.apidoc import DocSection

__all__ = [
    "cell",
    "code",
    "docstring_to_markdown",
    "inline",
    "sections_to_markdown",
    "squeeze_blank",
    "take_doctest",
]


_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|Yields|Raises|"
    r"Attributes|Example|Examples|Note|Notes|Warning|Warnings|See Also|Todo)\s*:\s*$"
)
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_][\w.]*)\s*(\(([^)]*)\))?\s*:\s*(.*)$")
_ROLE = re.compile(r":(?:py:)?[a-z]+:`~?([^`]+)`")
_PARAGRAPH_SECTIONS = frozenset(
    {"Returns", "Return", "Yields", "Note", "Notes", "Warning", "Warnings", "Todo"}
)

#: The title a section gets when its docstring gave none (griffe's kind -> shown title).
SECTION_TITLES = {
    "parameters": "Parameters",
    "other parameters": "Other parameters",
    "type parameters": "Type parameters",
    "returns": "Returns",
    "yields": "Yields",
    "receives": "Receives",
    "raises": "Raises",
    "warns": "Warns",
    "attributes": "Attributes",
    "functions": "Functions",
    "classes": "Classes",
    "modules": "Modules",
    "type aliases": "Type aliases",
    "examples": "Examples",
    "deprecated": "Deprecated",
}


def code(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds (a fence longer than any run inside)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def inline(text: str) -> str:
    """Sphinx roles (``:func:`x```) as inline code; a paragraph's trailing ``::`` as ``:``."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return text[:-1] if text.endswith("::") else text


def docstring_to_markdown(doc: str | None) -> str:
    """Render a (cleaned) docstring as Markdown.

    Doctest sessions (``>>>`` lines and their output) become ``pycon`` code blocks;
    Google-style sections (``Args:``, ``Returns:``, ``Raises:`` ...) become a bold
    heading and a list; other indented blocks stay as they were written, fenced.
    """
    if not doc:
        return ""
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">>>"):
            block, i = take_doctest(lines, i)
            out += ["", "```pycon", *block, "```", ""]
            continue
        match = _SECTION.match(stripped)
        if match and not line.startswith((" ", "\t")):
            body, i = _take_indented(lines, i + 1)
            out += ["", f"**{match.group(1)}:**", ""]
            out += _section_body(match.group(1), body)
            out.append("")
            continue
        if line.startswith(("    ", "\t")) and (not out or not out[-1].strip()):
            body, i = _take_indented(lines, i)
            out += ["```text", *_dedent(body), "```", ""]
            continue
        out.append(inline(line))
        i += 1
    return squeeze_blank("\n".join(out)).strip()


def take_doctest(lines: Sequence[str], start: int) -> tuple[list[str], int]:
    """A doctest block: from ``start`` to the first blank line, dedented to the ``>>>``."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    block: list[str] = []
    i = start
    while i < len(lines) and lines[i].strip():
        block.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].strip())
        i += 1
    return block, i


def _take_indented(lines: Sequence[str], start: int) -> tuple[list[str], int]:
    """Indented lines (blank lines inside kept) from ``start``; stops at the first unindented one."""
    body: list[str] = []
    i = start
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
        i -= 1
    return body, i


def _dedent(body: Sequence[str]) -> list[str]:
    widths = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    cut = min(widths, default=0)
    return [line[cut:] if line.strip() else "" for line in body]


def _section_body(section: str, body: Sequence[str]) -> list[str]:
    text = _dedent(body)
    if section in {"Example", "Examples"}:
        return docstring_to_markdown("\n".join(text)).splitlines()
    if section in _PARAGRAPH_SECTIONS:
        paragraphs: list[str] = [""]
        for line in text:
            if line.strip():
                paragraphs[-1] = f"{paragraphs[-1]} {inline(line.strip())}".strip()
            elif paragraphs[-1]:
                paragraphs.append("")
        return [p for chunk in paragraphs if chunk for p in (chunk, "")]
    items: list[str] = []
    for line in text:
        if not line.strip():
            continue
        if line.startswith((" ", "\t")) and items:  # continuation of the previous entry
            items[-1] += " " + inline(line.strip())
            continue
        entry = _ENTRY.match(line)
        if entry:
            name, _, kind, desc = entry.groups()
            item = f"- `{name}`"
            if kind:
                item += f" (`{kind}`)"
            items.append(item + (f": {inline(desc)}" if desc else ""))
        else:
            items.append(f"- {inline(line.strip())}")
    return items


def squeeze_blank(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text)


def sections_to_markdown(sections: Sequence[DocSection]) -> str:
    """griffe's sections of one docstring, in order, as Markdown."""
    out: list[str] = []
    for section in sections:
        title = section.title or SECTION_TITLES.get(section.kind, section.kind.capitalize())
        if section.kind == "text":
            out += [docstring_to_markdown(section.text), ""]
        elif section.kind in {"examples", "admonition"}:
            out += [f"**{title}:**", "", docstring_to_markdown(section.text), ""]
        elif section.kind == "deprecated":
            out += [f"**{title}:** {inline(_one_line(section.text))}", ""]
        elif section.items:
            out += [f"**{title}:**", "", *(_item(section.kind, item) for item in section.items), ""]
        elif section.text:
            out += [f"**{title}:**", "", docstring_to_markdown(section.text), ""]
    return squeeze_blank("\n".join(out)).strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _item(kind: str, item: object) -> str:
    name = getattr(item, "name", "")
    annotation = getattr(item, "annotation", None)
    description = inline(_one_line(getattr(item, "description", "")))
    if kind in {"raises", "warns"} or not name:
        head = f"`{annotation}`" if annotation else ""
    else:
        head = f"`{name}`" + (f" (`{annotation}`)" if annotation else "")
    if head and description:
        return f"- {head}: {description}"
    return f"- {head or description}"
