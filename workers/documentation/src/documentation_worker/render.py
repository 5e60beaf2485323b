"""Turn the :mod:`~documentation_worker.apidoc` model into Markdown pages.

Pure functions from data to text: no file system, no clock, so the same source always
gives byte-identical pages (reruns and resumed tasks do not churn the output).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from documentation_worker.apidoc import ClassDoc, FunctionDoc, ModuleDoc, VariableDoc, first_line

__all__ = [
    "ArtifactInfo",
    "Example",
    "collect_examples",
    "docstring_to_markdown",
    "module_filename",
    "render_index",
    "render_module",
    "render_report",
    "render_tutorial",
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


@dataclass(frozen=True)
class ArtifactInfo:
    """What a page needs to know about an artifact another task logged."""

    task_id: str
    artifact_type: str
    description: str
    location: str | None = None
    data: Any = None
    link: str | None = None  # ``location`` relative to the page being written, when it is a workspace path


@dataclass(frozen=True)
class Example:
    """A doctest session lifted from a docstring, with where it came from."""

    source: str  # dotted name of the documented object, e.g. "calc.ops.divide"
    lines: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def module_filename(module: ModuleDoc) -> str:
    """The page a module is written to: ``calc.ops`` -> ``calc.ops.md``."""
    return f"{module.name}.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def inline(text: str) -> str:
    """Sphinx roles (``:func:`x```) as inline code; a paragraph's trailing ``::`` as ``:``."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return text[:-1] if text.endswith("::") else text


def _anchor(name: str) -> str:
    """The anchor GitHub-style renderers give a heading holding just ``name``."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


# --------------------------------------------------------------------------- docstrings


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
            block, i = _take_doctest(lines, i)
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
    return _squeeze_blank("\n".join(out)).strip()


def _take_doctest(lines: Sequence[str], start: int) -> tuple[list[str], int]:
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


def _squeeze_blank(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text)


# --------------------------------------------------------------------------- module pages


def _def_line(fn: FunctionDoc) -> str:
    prefix = "async def " if fn.is_async else "def "
    decorators = [f"@{d}" for d in fn.decorators]
    return "\n".join([*decorators, f"{prefix}{fn.name}{fn.signature}"])


def _kind_note(fn: FunctionDoc) -> str:
    notes = {
        "property": "*property*",
        "staticmethod": "*static method*",
        "classmethod": "*class method*",
        "async": "*coroutine function*",
    }
    return notes.get(fn.kind, "")


def _function_block(fn: FunctionDoc, heading: str, level: int) -> list[str]:
    out = [f"{'#' * level} {heading}", "", "```python", _def_line(fn), "```", ""]
    note = _kind_note(fn)
    if note:
        out += [note, ""]
    body = docstring_to_markdown(fn.docstring)
    if body or fn.name != "__init__":
        out += [body or "*No docstring.*", ""]
    return out


def _class_block(cls: ClassDoc, level: int) -> list[str]:
    header = f"class {cls.name}" + (f"({', '.join(cls.bases)})" if cls.bases else "") + ":"
    decorators = [f"@{d}" for d in cls.decorators]
    out = [f"{'#' * level} `{cls.name}`", "", "```python", *decorators, header, "```", ""]
    body = docstring_to_markdown(cls.docstring)
    out += [body or "*No docstring.*", ""]
    if cls.attributes:
        out += ["Attributes:", "", *(_variable_line(v) for v in cls.attributes), ""]
    if cls.methods:
        members = ", ".join(f"`{m.name}`" for m in cls.methods)
        out += [f"Members: {members}", ""]
    for method in cls.methods:
        out += _function_block(method, f"`{cls.name}.{method.name}`", level + 1)
    return out


def _variable_line(var: VariableDoc) -> str:
    text = f"`{var.name}`"
    if var.annotation:
        text += f": `{var.annotation}`"
    if var.value is not None:
        text += f" = `{var.value}`"
    return f"- {text}"


def render_module(module: ModuleDoc, known: Iterable[str] = ()) -> str:
    """The Markdown page for one module; ``known`` names the modules that have pages (for links)."""
    documented = set(known)
    out = [f"# `{module.name}`", "", f"Source: `{module.path}`", ""]
    doc = docstring_to_markdown(module.docstring)
    out += [doc or "*This module has no docstring.*", ""]
    if module.reexports:
        out += ["## Re-exported names", ""]
        for name, source in module.reexports:
            target = f"[`{name}`]({source}.md#{_anchor(name)})" if source in documented else f"`{name}`"
            out.append(f"- {target} from `{source}`")
        out.append("")
    if module.classes or module.functions:
        out += ["## Contents", ""]
        out += [f"- class [`{c.name}`](#{_anchor(c.name)})" for c in module.classes]
        out += [f"- function [`{f.name}`](#{_anchor(f.name)})" for f in module.functions]
        out.append("")
    if module.variables:
        out += ["## Module attributes", "", *(_variable_line(v) for v in module.variables), ""]
    if module.classes:
        out += ["## Classes", ""]
        for cls in module.classes:
            out += _class_block(cls, 3)
    if module.functions:
        out += ["## Functions", ""]
        for fn in module.functions:
            out += _function_block(fn, f"`{fn.name}`", 3)
    if not (module.classes or module.functions or module.variables or module.reexports):
        out += ["*No public classes or functions.*", ""]
    return _squeeze_blank("\n".join(out)).rstrip() + "\n"


def render_index(
    package: str, modules: Sequence[ModuleDoc], test_reports: Sequence[ArtifactInfo] = ()
) -> str:
    """The index page: the package summary and a link to every module page."""
    top = next((m for m in modules if m.name == package), None)
    out = [f"# `{package}` API reference", ""]
    if top is not None and top.docstring:
        out += [docstring_to_markdown(top.docstring), ""]
    out += [f"{len(modules)} module{'s' if len(modules) != 1 else ''}.", ""]
    out += ["| Module | Summary | Classes | Functions |", "| --- | --- | ---: | ---: |"]
    for module in modules:
        out.append(
            f"| [`{module.name}`]({module_filename(module)}) | {_cell(inline(module.summary))} "
            f"| {len(module.classes)} | {len(module.functions)} |"
        )
    out.append("")
    if test_reports:
        out += ["## Test status", ""]
        for report in test_reports:
            out += _test_summary_lines(report)
        out.append("")
    return _squeeze_blank("\n".join(out)).rstrip() + "\n"


# --------------------------------------------------------------------------- tutorial


def collect_examples(modules: Iterable[ModuleDoc]) -> list[Example]:
    """Every ``>>>`` session in the docstrings, in source order (module, classes, functions)."""
    examples: list[Example] = []
    for module in modules:
        for owner, doc in _docstrings(module):
            for block in _doctest_blocks(doc):
                examples.append(Example(owner, tuple(block)))
    return examples


def _docstrings(module: ModuleDoc) -> Iterator[tuple[str, str | None]]:
    yield module.name, module.docstring
    for cls in module.classes:
        yield f"{module.name}.{cls.name}", cls.docstring
        for method in cls.methods:
            yield f"{module.name}.{cls.name}.{method.name}", method.docstring
    for fn in module.functions:
        yield f"{module.name}.{fn.name}", fn.docstring


def _doctest_blocks(doc: str | None) -> Iterator[list[str]]:
    lines = (doc or "").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().startswith(">>>"):
            block, i = _take_doctest(lines, i)
            yield block
        else:
            i += 1


def _needs_import(example: Example, module: str, names: Iterable[str]) -> list[str]:
    """``from module import name`` lines an example needs but does not have itself."""
    text = example.text
    if "import " in text:
        return []
    used = [n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}\s*\(", text)]
    return [f">>> from {module} import {', '.join(used)}"] if used else []


def render_tutorial(
    package: str,
    modules: Sequence[ModuleDoc],
    *,
    api_docs: str | None = None,
    max_examples: int = 6,
) -> str:
    """A getting-started page built from what the source says.

    The package docstring, how to import it, its module list, each public function's
    signature and summary line, and usage examples lifted from ``>>>`` sessions in the
    docstrings (or, if there are none, an import line for the first functions).
    """
    top = next((m for m in modules if m.name == package), None)
    out = [f"# Getting started with `{package}`", ""]
    if top is not None and top.docstring:
        out += [docstring_to_markdown(top.docstring), ""]
    public_modules = [m for m in modules if not m.name.rsplit(".", 1)[-1].startswith("_")]
    out += ["## Modules", ""]
    for module in public_modules:
        summary = f": {inline(module.summary)}" if module.summary else ""
        out.append(f"- `{module.name}`{summary}")
    out.append("")

    out += ["## Functions", ""]
    any_function = False
    for module in public_modules:
        if not module.functions and not module.classes:
            continue
        out += [f"### `{module.name}`", ""]
        for fn in module.functions:
            any_function = True
            summary = inline(first_line(fn.docstring))
            out.append(f"- `{fn.name}{fn.signature}`" + (f": {summary}" if summary else ""))
        for cls in module.classes:
            summary = inline(first_line(cls.docstring))
            out.append(f"- class `{cls.name}`" + (f": {summary}" if summary else ""))
        out.append("")
    if not any_function:
        out += ["The package has no public module-level functions.", ""]

    if top is not None and top.reexports:
        exported = ", ".join(f"`{name}`" for name, _ in top.reexports)
        out += [f"These are importable straight from `{package}`: {exported}.", ""]

    out += ["## Usage", ""]
    # The package docstring was printed in full above: do not repeat its examples.
    all_examples = collect_examples(modules)
    examples = [e for e in all_examples if not (top is not None and e.source == package)]
    if examples:
        by_module = {m.name: m for m in modules}
        shown = examples[:max_examples]
        for example in shown:
            module_name = _owner_module(example.source, by_module)
            owner = by_module.get(module_name)
            names = [*(f.name for f in owner.functions), *(c.name for c in owner.classes)] if owner else []
            imports = _needs_import(example, module_name, names) if module_name else []
            out += [
                f"From the docstring of `{example.source}`:",
                "",
                "```pycon",
                *imports,
                *example.lines,
                "```",
                "",
            ]
        if len(examples) > len(shown):
            out += [f"{len(examples) - len(shown)} more example(s) in the API reference.", ""]
    elif all_examples:
        out += ["The example at the top of this page shows the package in use.", ""]
    else:
        first = next((m for m in public_modules if m.functions), None)
        if first is not None:
            first_names = ", ".join(f.name for f in first.functions[:3])
            out += [
                "The docstrings carry no `>>>` examples; start by importing the functions:",
                "",
                "```python",
                f"from {first.name} import {first_names}",
                "```",
                "",
            ]
        else:
            out += ["```python", f"import {package}", "```", ""]

    cli = next((m for m in modules if m.name == f"{package}.__main__"), None)
    if cli is not None:
        out += ["## Command line", "", f"The package also runs as a program: `python -m {package}`.", ""]
        if cli.docstring:
            out += [docstring_to_markdown(cli.docstring), ""]
    if api_docs:
        out += [
            "## Next steps",
            "",
            f"Every module, class and function is described in the [API reference]({api_docs}).",
            "",
        ]
    return _squeeze_blank("\n".join(out)).rstrip() + "\n"


def _owner_module(dotted: str, by_module: Mapping[str, ModuleDoc]) -> str:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in by_module:
            return candidate
    return ""


# --------------------------------------------------------------------------- report page


def _test_summary_lines(report: ArtifactInfo) -> list[str]:
    data = report.data if isinstance(report.data, Mapping) else {}
    counts = ", ".join(f"{data.get(k, 0)} {k}" for k in ("passed", "failed", "skipped", "errors"))
    where = f" (`{report.location}`)" if report.location else ""
    return [f"- `{report.task_id}`: {counts}{where}"]


def render_report(title: str, artifacts: Sequence[ArtifactInfo]) -> str:
    """A report page from the artifacts of the tasks this one depends on.

    ``test_report`` artifacts get a table of counts and their failing tests; every other
    artifact is listed with its type, description and location.
    """
    out = [f"# {title}", ""]
    tests = [a for a in artifacts if a.artifact_type == "test_report"]
    others = [a for a in artifacts if a.artifact_type != "test_report"]
    if tests:
        out += [
            "## Tests",
            "",
            "| Task | Passed | Failed | Skipped | Errors | Report |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for report in tests:
            data = report.data if isinstance(report.data, Mapping) else {}
            out.append(
                f"| `{report.task_id}` | {data.get('passed', 0)} | {data.get('failed', 0)} "
                f"| {data.get('skipped', 0)} | {data.get('errors', 0)} | `{_cell(report.location or '')}` |"
            )
        out.append("")
        for report in tests:
            data = report.data if isinstance(report.data, Mapping) else {}
            failures = data.get("failures") or []
            if failures:
                out += [f"Failing in `{report.task_id}`:", ""]
                for failure in failures:
                    if isinstance(failure, Mapping):
                        out.append(f"- `{failure.get('id', '?')}`: {failure.get('message', '')}")
                    else:
                        out.append(f"- `{failure}`")
                out.append("")
    if others:
        out += ["## Other artifacts" if tests else "## Artifacts", ""]
        for artifact in others:
            if artifact.link:
                where = f" at [`{artifact.location}`]({artifact.link})"
            elif artifact.location:
                where = f" at `{artifact.location}`"
            else:
                where = ""
            out.append(
                f"- `{artifact.artifact_type}` from `{artifact.task_id}`{where}: {artifact.description}"
            )
        out.append("")
    if not artifacts:
        out += ["*No artifacts were shared with this task.*", ""]
    return _squeeze_blank("\n".join(out)).rstrip() + "\n"
