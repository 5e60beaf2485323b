"""The API model the pages are rendered from: what a package offers, as plain data.

It is filled from griffe's static analysis in the parser child
(:mod:`documentation_worker.extract`), sent to the worker as JSON and read back with
pydantic: the worker itself never runs griffe (or anything else) on the project's
source. Every object carries ``path``, the dotted name it is documented under on its page
(``pkg.mod.Class.method``); pages use it as the object's anchor, so a link is a path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ClassDoc",
    "DocItem",
    "DocSection",
    "FunctionDoc",
    "ModuleDoc",
    "Reexport",
    "SourceError",
    "VariableDoc",
    "first_line",
]


class SourceError(Exception):
    """A source file could not be read or parsed (``path`` as people see it)."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class DocItem:
    """One entry of a structured docstring section: a parameter, a raised exception, ..."""

    name: str
    annotation: str | None
    description: str


@dataclass(frozen=True)
class DocSection:
    """A docstring section as griffe parsed it (Google, NumPy or Sphinx style).

    ``kind`` is griffe's (``text``, ``parameters``, ``returns``, ``raises``, ``examples``,
    ``admonition``, ...); ``text`` holds the prose of text-like sections, ``items`` the
    entries of list-like ones."""

    kind: str
    title: str | None = None
    text: str = ""
    items: tuple[DocItem, ...] = ()


@dataclass(frozen=True)
class FunctionDoc:
    """A function or method: ``signature`` is the ``def`` line's parentheses and return."""

    name: str
    path: str
    signature: str  # "(a: int, /, b: str = 'x', *args: int, c: bool, **kw: Any) -> None"
    decorators: tuple[str, ...] = ()
    docstring: str | None = None
    sections: tuple[DocSection, ...] = ()
    is_async: bool = False
    #: ``property``, ``staticmethod``, ``classmethod``, ``async`` or ``""`` (plain).
    kind: str = ""
    overloads: tuple[str, ...] = ()  # the signatures of its ``@overload`` variants
    lineno: int | None = None
    #: Where it is defined when it is documented here under another name (a re-export).
    origin: str | None = None


@dataclass(frozen=True)
class VariableDoc:
    """A module or class attribute (``NAME: T = value``, or a property)."""

    name: str
    path: str
    annotation: str | None = None
    value: str | None = None
    docstring: str | None = None
    sections: tuple[DocSection, ...] = ()
    lineno: int | None = None
    origin: str | None = None


@dataclass(frozen=True)
class ClassDoc:
    """A class with its bases, decorators, docstring and documented members."""

    name: str
    path: str
    bases: tuple[str, ...] = ()
    decorators: tuple[str, ...] = ()
    docstring: str | None = None
    sections: tuple[DocSection, ...] = ()
    methods: tuple[FunctionDoc, ...] = ()
    attributes: tuple[VariableDoc, ...] = ()
    classes: tuple[ClassDoc, ...] = ()
    #: Special members without a docstring of their own (``__eq__``, ``__len__``, ``__slots__``): listed, not described.
    special_methods: tuple[FunctionDoc, ...] = ()
    special_attributes: tuple[VariableDoc, ...] = ()
    lineno: int | None = None
    origin: str | None = None


@dataclass(frozen=True)
class Reexport:
    """A public name this module takes from elsewhere and documents by a link.

    ``page`` and ``anchor`` say where the object is documented in full (None: it is not in
    this reference, e.g. it comes from another package; ``target`` still names it)."""

    name: str
    target: str
    kind: str = ""  # class, function, attribute, module, or "" when it could not be resolved
    summary: str = ""
    page: str | None = None
    anchor: str | None = None


@dataclass(frozen=True)
class ModuleDoc:
    """One module: ``name`` is dotted (``calc.ops``); ``path`` is its file relative to the package's parent.

    ``documented`` is False for a module that gets no page of its own (private modules by
    default): its public objects still appear wherever a documented module re-exports them.
    """

    name: str
    path: str
    docstring: str | None = None
    sections: tuple[DocSection, ...] = ()
    classes: tuple[ClassDoc, ...] = ()
    functions: tuple[FunctionDoc, ...] = ()
    variables: tuple[VariableDoc, ...] = ()
    reexports: tuple[Reexport, ...] = ()
    submodules: tuple[str, ...] = ()  # the dotted names of its documented submodules
    all_names: tuple[str, ...] | None = None
    documented: bool = True

    @property
    def is_package(self) -> bool:
        return self.path.endswith(("__init__.py", "__init__.pyi"))

    @property
    def summary(self) -> str:
        """The first line of the module docstring, or ``""``."""
        return first_line(self.docstring)

    @property
    def public_count(self) -> int:
        """How many public names the module's page shows (defined here or re-exported)."""
        return len(self.classes) + len(self.functions) + len(self.variables) + len(self.reexports)


def first_line(docstring: str | None) -> str:
    """The first non-empty line of a docstring (its summary), or ``""``."""
    for line in (docstring or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
