"""Turn the :mod:`~documentation_worker.apidoc` model into the API reference's Markdown pages.

Pure functions from data to text: no file system, no clock, so the same source always
gives byte-identical pages (reruns and resumed tasks do not churn the output). Every
documented object gets an anchor named by its dotted path (``<a id="pkg.mod.Name"></a>``,
which GitHub, MkDocs and plain HTML all honour), and every link goes to such an anchor
on a page of the same reference: what it links to is there (tests/test_doc_coverage.py
checks every link of real packages' pages).
"""

from __future__ import annotations

from collections.abc import Sequence

from documentation_worker.apidoc import ClassDoc, FunctionDoc, ModuleDoc, Reexport, VariableDoc, first_line
from documentation_worker.markdown import (
    cell,
    code,
    docstring_to_markdown,
    inline,
    sections_to_markdown,
    squeeze_blank,
)
from documentation_worker.naming import page_name
from documentation_worker.report import ArtifactInfo, test_summary_lines

__all__ = ["module_filename", "render_index", "render_module"]

#: Deepest heading Markdown has.
MAX_LEVEL = 6
KIND_NOTES = {
    "property": "*property*",
    "staticmethod": "*static method*",
    "classmethod": "*class method*",
    "async": "*coroutine function*",
}


def module_filename(module: ModuleDoc) -> str:
    """The page a module is written to: ``calc.ops`` -> ``calc.ops.md``."""
    return page_name(module.name)


def anchor(path: str) -> str:
    """The HTML anchor an object's heading or list entry carries."""
    return f'<a id="{path}"></a>'


def _doc(sections: Sequence[object], docstring: str | None) -> str:
    """The docstring as Markdown: griffe's sections when it parsed any, else the raw text."""
    if sections:
        return sections_to_markdown(sections)  # type: ignore[arg-type]
    return docstring_to_markdown(docstring)


def _origin_note(origin: str | None) -> list[str]:
    return [f"*Defined as `{origin}`.*", ""] if origin else []


def _heading(level: int, text: str) -> str:
    return f"{'#' * min(level, MAX_LEVEL)} {text}"


def _def_lines(fn: FunctionDoc) -> list[str]:
    prefix = "async def " if fn.is_async else "def "
    lines: list[str] = []
    for overload in fn.overloads:
        lines += ["@overload", f"{prefix}{fn.name}{overload}: ..."]
    return [*lines, *(f"@{d}" for d in fn.decorators), f"{prefix}{fn.name}{fn.signature}"]


def _function_block(fn: FunctionDoc, heading: str, level: int) -> list[str]:
    out = [anchor(fn.path), "", _heading(level, heading), "", "```python", *_def_lines(fn), "```", ""]
    note = KIND_NOTES.get(fn.kind, "")
    if note:
        out += [note, ""]
    out += _origin_note(fn.origin)
    body = _doc(fn.sections, fn.docstring)
    if body or fn.name != "__init__":
        out += [body or "*No docstring.*", ""]
    return out


def _variable_line(var: VariableDoc) -> str:
    text = f"{anchor(var.path)}`{var.name}`"
    if var.annotation:
        text += f": {code(var.annotation)}"
    if var.value is not None:
        text += f" = {code(var.value)}"
    summary = inline(first_line(var.docstring))
    return f"- {text}" + (f": {summary}" if summary else "")


def _variable_block(var: VariableDoc, heading: str, level: int) -> list[str]:
    """An attribute with a docstring of its own: a heading, like a function."""
    declared = var.name + (f": {var.annotation}" if var.annotation else "")
    declared += f" = {var.value}" if var.value is not None else ""
    out = [anchor(var.path), "", _heading(level, heading), "", "```python", declared, "```", ""]
    return out + _origin_note(var.origin) + [_doc(var.sections, var.docstring), ""]


def _variables(variables: Sequence[VariableDoc], prefix: str, level: int) -> list[str]:
    """Attributes without a docstring as one list, those with one as blocks of their own."""
    plain = [v for v in variables if not v.docstring]
    out = [*(_variable_line(v) for v in plain), ""] if plain else []
    for var in variables:
        if var.docstring:
            out += _variable_block(var, f"`{prefix}{var.name}`", level)
    return out


def _class_block(cls: ClassDoc, level: int, prefix: str = "") -> list[str]:
    title = f"{prefix}{cls.name}"
    header = f"class {cls.name}" + (f"({', '.join(cls.bases)})" if cls.bases else "") + ":"
    decorators = [f"@{d}" for d in cls.decorators]
    out = [
        anchor(cls.path),
        "",
        _heading(level, f"`{title}`"),
        "",
        "```python",
        *decorators,
        header,
        "```",
        "",
    ]
    out += _origin_note(cls.origin)
    out += [_doc(cls.sections, cls.docstring) or "*No docstring.*", ""]
    members: list[VariableDoc | FunctionDoc | ClassDoc] = [*cls.attributes, *cls.methods, *cls.classes]
    if members:
        links = ", ".join(f"[`{m.name}`](#{m.path})" for m in members)
        out += [f"Members: {links}", ""]
    specials = [
        *(f"{anchor(m.path)}{code(m.name + m.signature)}" for m in cls.special_methods),
        *(f"{anchor(a.path)}`{a.name}`" for a in cls.special_attributes),
    ]
    if specials:
        out += ["Special members: " + ", ".join(specials), ""]
    if cls.attributes:
        out += [f"Attributes of `{title}`:", "", *_variables(cls.attributes, f"{title}.", level + 1)]
    for method in cls.methods:
        out += _function_block(method, f"`{title}.{method.name}`", level + 1)
    for nested in cls.classes:
        out += _class_block(nested, level + 1, f"{title}.")
    return out


def _reexport_line(module: ModuleDoc, item: Reexport) -> str:
    if item.kind == "wildcard":
        return (
            f"- every public name of `{item.target}` (`from {item.target} import *`; not in this reference)"
        )
    name = f"`{item.name}`"
    if item.page is not None:
        here = item.page == module_filename(module)
        target = (
            f"#{item.anchor}"
            if here and item.anchor
            else item.page + (f"#{item.anchor}" if item.anchor else "")
        )
        name = f"[{name}]({target})"
    what = f"{item.kind} " if item.kind else ""
    where = f"{what}`{item.target}`" if item.target else what.strip()
    if item.page is None and item.kind != "module":
        where += " (not in this reference)"
    summary = f": {inline(item.summary)}" if item.summary else ""
    return f"- {anchor(module.name + '.' + item.name)}{name}, {where}{summary}"


def render_module(module: ModuleDoc, known: Sequence[str] = ()) -> str:
    """The Markdown page for one module (``known``: modules with pages, for the submodule links)."""
    out = [f"# `{module.name}`", "", anchor(module.name), "", f"Source: `{module.path}`", ""]
    out += [_doc(module.sections, module.docstring) or "*This module has no docstring.*", ""]
    pages = set(known) if known else None
    submodules = [s for s in module.submodules if pages is None or s in pages]
    if submodules:
        out += ["## Submodules", "", *(f"- [`{s}`]({page_name(s)})" for s in submodules), ""]
    if module.classes or module.functions:
        out += ["## Contents", ""]
        for kind, objects in (("class", module.classes), ("function", module.functions)):
            for obj in objects:
                summary = inline(first_line(obj.docstring))
                out.append(f"- {kind} [`{obj.name}`](#{obj.path})" + (f": {summary}" if summary else ""))
        out.append("")
    if module.reexports:
        out += ["## Re-exported names", "", *(_reexport_line(module, r) for r in module.reexports), ""]
    if module.variables:
        out += ["## Module attributes", "", *_variables(module.variables, "", 3)]
    if module.classes:
        out += ["## Classes", ""]
        for cls in module.classes:
            out += _class_block(cls, 3)
    if module.functions:
        out += ["## Functions", ""]
        for fn in module.functions:
            out += _function_block(fn, f"`{fn.name}`", 3)
    if not (module.public_count or submodules):
        out += ["*No public classes, functions or attributes.*", ""]
    return squeeze_blank("\n".join(out)).rstrip() + "\n"


def render_index(
    package: str, modules: Sequence[ModuleDoc], test_reports: Sequence[ArtifactInfo] = ()
) -> str:
    """The index page: the package summary and a link to every module page."""
    top = next((m for m in modules if m.name == package), None)
    out = [f"# `{package}` API reference", ""]
    if top is not None and top.docstring:
        out += [_doc(top.sections, top.docstring), ""]
    names = sum(m.public_count for m in modules)
    out += [f"{len(modules)} module{'s' if len(modules) != 1 else ''}, {names} public names.", ""]
    out += [
        "| Module | Summary | Classes | Functions | Other names |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for module in modules:
        others = len(module.variables) + len(module.reexports)
        out.append(
            f"| [`{module.name}`]({module_filename(module)}) | {cell(inline(module.summary))} "
            f"| {len(module.classes)} | {len(module.functions)} | {others} |"
        )
    out.append("")
    if test_reports:
        out += ["## Test status", ""]
        for report in test_reports:
            out += test_summary_lines(report)
        out.append("")
    return squeeze_blank("\n".join(out)).rstrip() + "\n"
