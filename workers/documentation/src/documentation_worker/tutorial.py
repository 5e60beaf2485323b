"""The getting-started page: what the source says, with the examples its docstrings carry.

Pure functions from the API model to text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from documentation_worker.apidoc import ModuleDoc, first_line
from documentation_worker.markdown import docstring_to_markdown, inline, squeeze_blank, take_doctest

__all__ = ["Example", "collect_examples", "render_tutorial"]

#: Names listed in one sentence before "and N more".
MAX_LISTED = 30


@dataclass(frozen=True)
class Example:
    """A doctest session lifted from a docstring, with where it came from."""

    source: str  # dotted name of the documented object, e.g. "calc.ops.divide"
    lines: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def collect_examples(modules: Iterable[ModuleDoc]) -> list[Example]:
    """Every ``>>>`` session in the docstrings, in source order (module, classes, functions)."""
    examples: list[Example] = []
    for module in modules:
        if not module.documented:
            continue
        for owner, doc in _docstrings(module):
            for block in _doctest_blocks(doc):
                examples.append(Example(owner, tuple(block)))
    return examples


def _docstrings(module: ModuleDoc) -> Iterator[tuple[str, str | None]]:
    yield module.name, module.docstring
    for cls in module.classes:
        yield cls.path, cls.docstring
        for method in cls.methods:
            yield method.path, method.docstring
    for fn in module.functions:
        yield fn.path, fn.docstring


def _doctest_blocks(doc: str | None) -> Iterator[list[str]]:
    lines = (doc or "").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().startswith(">>>"):
            block, i = take_doctest(lines, i)
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
    public_modules = [m for m in modules if m.documented]
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
        exported = ", ".join(f"`{r.name}`" for r in top.reexports[:MAX_LISTED])
        if len(top.reexports) > MAX_LISTED:
            exported += f" and {len(top.reexports) - MAX_LISTED} more (see the API reference)"
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
    return squeeze_blank("\n".join(out)).rstrip() + "\n"


def _owner_module(dotted: str, by_module: Mapping[str, ModuleDoc]) -> str:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in by_module:
            return candidate
    return ""
