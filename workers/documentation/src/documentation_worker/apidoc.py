"""Read a Python package's public API from its source with :mod:`ast`.

Nothing here imports or executes the code it documents: every fact comes from the syntax
tree (names, signatures with annotations and defaults, decorators, docstrings, line
numbers). A file that does not parse raises :class:`SourceError` naming the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ClassDoc",
    "FunctionDoc",
    "ModuleDoc",
    "SourceError",
    "VariableDoc",
    "format_signature",
    "is_public",
    "parse_module",
    "parse_source",
]

#: Dunder methods worth documenting even though they start with an underscore.
DOCUMENTED_DUNDERS = frozenset({"__init__", "__call__"})


class SourceError(Exception):
    """A source file could not be read or parsed."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class VariableDoc:
    """A public module-level name bound by an assignment (``NAME: T = value``)."""

    name: str
    annotation: str | None
    value: str | None
    lineno: int


@dataclass(frozen=True)
class FunctionDoc:
    """A function or method as written in the source."""

    name: str
    signature: str  # "(a: int, /, b: str = 'x', *args: int, c: bool, **kw: Any) -> None"
    decorators: tuple[str, ...]
    docstring: str | None
    is_async: bool
    lineno: int

    @property
    def kind(self) -> str:
        """``property``, ``staticmethod``, ``classmethod``, ``async`` or ``""`` (plain)."""
        for deco in self.decorators:
            base = deco.split("(", 1)[0]
            if base in {"property", "functools.cached_property", "cached_property"}:
                return "property"
            if base.endswith(".setter") or base.endswith(".deleter"):
                return "property"
            if base in {"staticmethod", "classmethod"}:
                return base
        return "async" if self.is_async else ""


@dataclass(frozen=True)
class ClassDoc:
    """A class with its bases, decorators, docstring and documented methods."""

    name: str
    bases: tuple[str, ...]
    decorators: tuple[str, ...]
    docstring: str | None
    methods: tuple[FunctionDoc, ...]
    lineno: int
    attributes: tuple[VariableDoc, ...] = ()


@dataclass(frozen=True)
class ModuleDoc:
    """One module: ``name`` is dotted (``calc.ops``); ``path`` is relative to the package's parent."""

    name: str
    path: str
    docstring: str | None
    classes: tuple[ClassDoc, ...] = ()
    functions: tuple[FunctionDoc, ...] = ()
    variables: tuple[VariableDoc, ...] = ()
    all_names: tuple[str, ...] | None = field(default=None)
    #: Public names this module imports and re-exports through ``__all__``: ``(name, from_module)``.
    reexports: tuple[tuple[str, str], ...] = ()

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")

    @property
    def summary(self) -> str:
        """The first line of the module docstring, or ``""``."""
        return first_line(self.docstring)


def first_line(docstring: str | None) -> str:
    """The first non-empty line of a docstring (its summary), or ``""``."""
    for line in (docstring or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_public(name: str, all_names: tuple[str, ...] | None = None) -> bool:
    """A name is public when listed in ``__all__`` (if the module has one), else when it has no leading ``_``."""
    if all_names is not None:
        return name in all_names
    return not name.startswith("_")


def parse_module(name: str, path: Path, display_path: str | None = None) -> ModuleDoc:
    """Read and parse one file into a :class:`ModuleDoc`. Raises :class:`SourceError` on bad syntax."""
    shown = display_path or str(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise SourceError(shown, None, f"cannot read: {exc.strerror or exc}") from exc
    return parse_source(name, source, shown)


def parse_source(name: str, source: bytes, shown: str) -> ModuleDoc:
    """Parse a module's source (``shown`` is its path as people see it). Raises :class:`SourceError`.

    ``MemoryError`` and ``RecursionError`` (a hostile nesting depth) pass through: the
    caller runs this where they cannot hurt (:mod:`documentation_worker.parsing`).
    """
    try:
        tree = ast.parse(source, filename=shown, type_comments=False)
    except SyntaxError as exc:
        raise SourceError(shown, exc.lineno, f"syntax error: {exc.msg}") from exc
    except ValueError as exc:  # e.g. null bytes on older Pythons
        raise SourceError(shown, None, f"cannot parse: {exc}") from exc
    return module_from_tree(name, shown, tree)


def module_from_tree(name: str, path: str, tree: ast.Module) -> ModuleDoc:
    """Build a :class:`ModuleDoc` from an already parsed module."""
    all_names = _find_all(tree)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    classes: list[ClassDoc] = []
    functions: list[FunctionDoc] = []
    variables: list[VariableDoc] = []
    reexports: list[tuple[str, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and is_public(node.name, all_names):
            classes.append(_class_doc(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(node.name, all_names):
            functions.append(function_doc(node))
        elif isinstance(node, ast.ImportFrom) and all_names is not None:
            source = _import_source(node, package)
            for alias in node.names:
                bound = alias.asname or alias.name
                if bound in all_names:
                    reexports.append((bound, source))
        else:
            variables.extend(_variables(node, all_names))
    if all_names is not None:  # keep the order __all__ gives
        reexports.sort(key=lambda item: all_names.index(item[0]))
    return ModuleDoc(
        name=name,
        path=path,
        docstring=ast.get_docstring(tree, clean=True),
        classes=tuple(classes),
        functions=tuple(functions),
        variables=tuple(variables),
        all_names=all_names,
        reexports=tuple(reexports),
    )


def _import_source(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` reads from (relative imports resolved against ``package``)."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


def _find_all(tree: ast.Module) -> tuple[str, ...] | None:
    """The literal ``__all__`` list/tuple of a module, if it has one we can read statically."""
    for node in tree.body:
        value: ast.expr | None = None
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "__all__"
        ):
            value = node.value
        if isinstance(value, (ast.List, ast.Tuple)):
            names = [e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(names) == len(value.elts):
                return tuple(names)
    return None


def _variables(node: ast.stmt, all_names: tuple[str, ...] | None) -> Iterator[VariableDoc]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        name = node.target.id
        if name != "__all__" and is_public(name, all_names):
            yield VariableDoc(
                name=name,
                annotation=ast.unparse(node.annotation),
                value=_short(ast.unparse(node.value)) if node.value is not None else None,
                lineno=node.lineno,
            )
    elif isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id != "__all__" and is_public(target.id, all_names):
                yield VariableDoc(
                    name=target.id, annotation=None, value=_short(ast.unparse(node.value)), lineno=node.lineno
                )


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _class_doc(node: ast.ClassDef) -> ClassDoc:
    bases = [ast.unparse(b) for b in node.bases]
    bases += [ast.unparse(k) for k in node.keywords]  # metaclass=..., total=False
    methods = [
        function_doc(item)
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (not item.name.startswith("_") or item.name in DOCUMENTED_DUNDERS)
    ]
    attributes = [var for item in node.body for var in _variables(item, None)]
    return ClassDoc(
        name=node.name,
        bases=tuple(bases),
        decorators=tuple(ast.unparse(d) for d in node.decorator_list),
        docstring=ast.get_docstring(node, clean=True),
        methods=tuple(methods),
        lineno=node.lineno,
        attributes=tuple(attributes),
    )


def function_doc(node: ast.FunctionDef | ast.AsyncFunctionDef) -> FunctionDoc:
    """A :class:`FunctionDoc` for a ``def`` or ``async def`` node."""
    return FunctionDoc(
        name=node.name,
        signature=format_signature(node.args, node.returns),
        decorators=tuple(ast.unparse(d) for d in node.decorator_list),
        docstring=ast.get_docstring(node, clean=True),
        is_async=isinstance(node, ast.AsyncFunctionDef),
        lineno=node.lineno,
    )


def format_signature(args: ast.arguments, returns: ast.expr | None = None) -> str:
    """Render ``ast.arguments`` the way Python would print the ``def`` line's parentheses.

    Keeps annotations and defaults as written, the ``/`` after positional-only parameters,
    ``*args`` (or a bare ``*`` before keyword-only ones) and ``**kwargs``.
    """
    parts: list[str] = []
    positional = [*args.posonlyargs, *args.args]
    # Defaults belong to the last len(defaults) positional parameters.
    first_default = len(positional) - len(args.defaults)
    for index, arg in enumerate(positional):
        default = args.defaults[index - first_default] if index >= first_default else None
        parts.append(_param(arg, default))
        if args.posonlyargs and index == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg is not None:
        parts.append("*" + _param(args.vararg, None))
    elif args.kwonlyargs:
        parts.append("*")
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parts.append(_param(arg, kw_default))
    if args.kwarg is not None:
        parts.append("**" + _param(args.kwarg, None))
    text = "(" + ", ".join(parts) + ")"
    if returns is not None:
        text += " -> " + ast.unparse(returns)
    return text


def _param(arg: ast.arg, default: ast.expr | None) -> str:
    text = arg.arg
    if arg.annotation is not None:
        text += ": " + ast.unparse(arg.annotation)
        if default is not None:
            return text + " = " + ast.unparse(default)
    elif default is not None:
        return text + "=" + ast.unparse(default)
    return text
