"""A package's public API from griffe's static analysis, as :mod:`~documentation_worker.apidoc` data.

Runs in the parser child only (:mod:`documentation_worker.parse_child`). Modules come in as
bytes the worker read through its own bounded, no-links walk; griffe visits each one from
those bytes (:func:`griffe.visit`), so it never looks at the file system, and nothing is
imported or run: there is no loader search path, inspection is off and aliases to other
packages stay unresolved. Then, once every module is in, what a reader of the package
needs: ``__all__`` (with ``+=`` and ``a.__all__ + b.__all__``), wildcard imports, aliases
(re-exports) followed to where they are defined, names defined under ``if``/``try``,
``.pyi`` stubs merged into their modules, and Google/NumPy/Sphinx docstrings parsed.

What is public follows griffe (``Object.is_public``: ``__all__`` if the module has one,
else no leading ``_`` and not imported), plus the two re-export conventions of typed
Python that griffe ships as extensions: ``from a import x as x`` and ``from a import *``
in a module without ``__all__``. In classes, special methods are shown when they are
``__init__``/``__call__`` or have a docstring of their own (pdoc's rule).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path
from typing import Any

import griffe

from documentation_worker.apidoc import (
    ClassDoc,
    FunctionDoc,
    ModuleDoc,
    Reexport,
    SourceError,
    VariableDoc,
    first_line,
)
from documentation_worker.docsections import docstring_sections
from documentation_worker.naming import is_private_module, page_name
from documentation_worker.objects import (
    Member,
    docstring_of,
    final_target,
    function_doc,
    is_special,
    named_object,
    property_doc,
    variable_doc,
)

__all__ = ["Collector"]

#: Special methods always shown (others only with a docstring of their own).
ALWAYS_SHOWN = frozenset({"__init__", "__call__"})
#: Module-level names never documented as attributes.
NEVER_SHOWN = frozenset({"__all__", "__doc__", "__path__", "__file__", "__name__", "__spec__"})


class CopiedDocstrings(griffe.Extension):
    """``f.__doc__ = g.__doc__`` (or ``= "text"``) at module level: griffe does not follow it, a reader should."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[str, str, str | None, str | None]] = []  # (module, name, from name, text)

    def on_attribute_node(self, *, node: ast.AST | griffe.ObjectNode, agent: Any, **kwargs: Any) -> None:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not agent.current.is_module:
            return
        target, value = node.targets[0], node.value
        if not (
            isinstance(target, ast.Attribute)
            and target.attr == "__doc__"
            and isinstance(target.value, ast.Name)
        ):
            return
        if isinstance(value, ast.Attribute) and value.attr == "__doc__" and isinstance(value.value, ast.Name):
            self.copies.append((agent.current.path, target.value.id, value.value.id, None))
        elif isinstance(value, ast.Constant) and isinstance(value.value, str):
            self.copies.append((agent.current.path, target.value.id, None, value.value))


class RedundantAliases(griffe.Extension):
    """``from a import x as x`` marks ``x`` public (PEP 484's re-export convention)."""

    def on_alias_instance(
        self, *, node: ast.AST | griffe.ObjectNode, alias: griffe.Alias, **kwargs: Any
    ) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in node.names:
                if name.asname is not None and name.asname == name.name.rpartition(".")[2] == alias.name:
                    alias.public = True


class Collector:
    """The package, one module at a time (:meth:`add`), then its documented API (:meth:`finish`)."""

    def __init__(self) -> None:
        self.copies = CopiedDocstrings()
        self.extensions = griffe.load_extensions(self.copies, RedundantAliases())
        self.collection = griffe.ModulesCollection()
        self.lines = griffe.LinesCollection()
        self.modules: dict[str, griffe.Module] = {}
        self.shown_paths: dict[str, str] = {}  # dotted module name -> its file as people see it
        self.stubs: dict[str, griffe.Module] = {}  # dotted module name -> its .pyi, when it has a .py too
        #: Stubs that could not be merged (griffe's merge failed on them): their module as the .py says.
        self.unmerged: list[str] = []

    def add(self, dotted: str, shown: str, data: bytes) -> None:
        """Visit one module's source (``shown`` is its path as people see it). Raises :class:`SourceError`."""
        code = _decode(shown, data)
        parent_name, _, name = dotted.rpartition(".")
        parent = self._namespace(parent_name) if parent_name else None
        try:
            module = griffe.visit(
                name,
                filepath=Path(shown),
                code=code,
                extensions=self.extensions,
                parent=parent,
                docstring_parser=griffe.Parser.auto,
                lines_collection=self.lines,
                modules_collection=self.collection,
            )
        except SyntaxError as exc:
            raise SourceError(shown, exc.lineno, f"syntax error: {exc.msg}") from None
        except ValueError as exc:  # null bytes (Python 3.11)
            raise SourceError(shown, None, f"cannot parse: {exc}") from None
        if shown.endswith(".pyi") and dotted in self.modules:
            self.stubs[dotted] = module  # merged once aliases resolve (griffe's merge needs their targets)
            return
        holder: Any = parent if parent is not None else self.collection
        holder.set_member(name, module)
        self.modules[dotted] = module
        self.shown_paths[dotted] = shown

    def _namespace(self, dotted: str) -> griffe.Module:
        """The module ``dotted`` (made as an empty namespace package when it has no ``__init__``)."""
        if dotted in self.modules:
            return self.modules[dotted]
        parent_name, _, name = dotted.rpartition(".")
        parent = self._namespace(parent_name) if parent_name else None
        module = griffe.Module(
            name,
            filepath=[Path(*dotted.split("."))],
            parent=parent,
            lines_collection=self.lines,
            modules_collection=self.collection,
        )
        (parent if parent is not None else self.collection).set_member(name, module)
        self.modules[dotted] = module
        return module

    def finish(self, *, include_private: bool) -> list[ModuleDoc]:
        """Expand ``__all__`` and wildcards, follow aliases (inside the package only), build the model."""
        loader = griffe.GriffeLoader(
            extensions=self.extensions,
            lines_collection=self.lines,
            modules_collection=self.collection,
            allow_inspection=False,
        )
        tops = [m for m in self.collection.members.values() if isinstance(m, griffe.Module)]
        for top in tops:
            loader.expand_exports(top)
            loader.expand_wildcards(top, external=False)
        loader.resolve_aliases(implicit=True, external=False)
        for dotted, stub in self.stubs.items():
            module = self.modules[dotted]
            _prepare_merge(module, stub)
            try:
                griffe.merge_stubs(module, stub)
            except Exception:
                self.unmerged.append(dotted)
        if self.stubs:
            loader.resolve_aliases(implicit=True, external=False)  # what the stubs brought in
        for top in tops:
            self.extensions.call("on_package", pkg=top, loader=loader)
        self._apply_copied_docstrings()
        for module in self.modules.values():
            for member in module.members.values():
                if member.is_alias and getattr(member, "wildcard_imported", False) and not module.exports:
                    member.public = True  # `from .more import *` re-exports (no __all__ to say otherwise)
        return _Builder(self, include_private).build()

    def _apply_copied_docstrings(self) -> None:
        by_path = {m.path: m for m in self.modules.values()}
        for module_path, name, source, text in self.copies.copies:
            module = by_path.get(module_path)
            if module is None:
                continue
            target = module.members.get(name)
            if not isinstance(target, griffe.Object) or target.docstring is not None:
                continue
            if source is not None:
                donor = module.members.get(source)
                if donor is None or donor.is_alias or donor.docstring is None:
                    continue
                text = donor.docstring.value
            if text:
                target.docstring = griffe.Docstring(text, parent=target, parser=griffe.Parser.auto)


class _Builder:
    """Turns the resolved griffe tree into :class:`ModuleDoc` objects and decides where each object is documented."""

    def __init__(self, collector: Collector, include_private: bool) -> None:
        self.collector = collector
        self.include_private = include_private
        self.documented = {
            dotted: include_private or not is_private_module(dotted) for dotted in collector.modules
        }
        #: canonical path of an object -> (page, anchor) where it is documented in full
        self.where: dict[str, tuple[str, str]] = {}

    def build(self) -> list[ModuleDoc]:
        plan: dict[str, list[tuple[str, Member]]] = {}
        for dotted, module in self.collector.modules.items():
            plan[dotted] = _in_export_order(
                module, [(n, m) for n, m in module.members.items() if self._shown_in_module(module, n, m)]
            )
            if self.documented[dotted]:  # pass 1: what is defined in a documented module, documented there
                for name, member in plan[dotted]:
                    if not member.is_alias:
                        self._register(member, page_name(dotted), f"{dotted}.{name}")
        # pass 2: a re-export of something with no page of its own is documented in full where it is
        # re-exported: in the module sharing most of its dotted path (`pkg.api` over `pkg` for
        # `pkg.api._impl.X`), then the shallowest (`pkg` over `pkg.more` for `pkg.recipes.X`)
        homes: dict[str, tuple[tuple[int, int], str, str, griffe.Object]] = {}
        for dotted in self.collector.modules:
            if not self.documented[dotted]:
                continue
            for name, member in plan[dotted]:
                target = final_target(member)
                if not member.is_alias or target is None or target.is_module or target.path in self.where:
                    continue
                rank = (-_shared_prefix(dotted, target.path), dotted.count("."))
                if target.path not in homes or rank < homes[target.path][0]:
                    homes[target.path] = (rank, dotted, name, target)
        for _, dotted, name, target in homes.values():
            self._register(target, page_name(dotted), f"{dotted}.{name}")
        return [
            self._module_doc(dotted, module, plan[dotted])
            for dotted, module in self.collector.modules.items()
        ]

    def _register(self, obj: Member, page: str, anchor: str) -> None:
        self.where.setdefault(obj.path, (page, anchor))
        if isinstance(obj, griffe.Class):
            for name, member in obj.members.items():
                if not member.is_alias and self._shown_in_class(name, member):
                    self._register(member, page, f"{anchor}.{name}")

    # -- what is shown -----------------------------------------------------------------

    def _shown_in_module(self, module: griffe.Module, name: str, member: Member) -> bool:
        if name in NEVER_SHOWN:
            return False
        if member.is_alias:
            target = final_target(member)
            if target is not None and target.is_module and target.parent is module:
                return False  # its own submodule (`from . import sub`): listed as a submodule
        elif member.is_module:
            return False
        try:
            public = member.is_public
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            public = False
        if public:
            return True
        return self.include_private and not member.is_alias and name.startswith("_") and not is_special(name)

    def _shown_in_class(self, name: str, member: Member) -> bool:
        """Shown in full (special members without a docstring are only listed: :func:`_listed_only`)."""
        if member.is_alias:
            return False
        if is_special(name):
            return not _listed_only(name, member)
        return self.include_private or not name.startswith("_")

    # -- the model -------------------------------------------------------------------------

    def _module_doc(self, dotted: str, module: griffe.Module, members: list[tuple[str, Member]]) -> ModuleDoc:
        classes: list[ClassDoc] = []
        functions: list[FunctionDoc] = []
        variables: list[VariableDoc] = []
        reexports: list[Reexport] = []
        for name, member in members:
            path = f"{dotted}.{name}"
            target = final_target(member)
            if member.is_alias:
                where = self.where.get(target.path) if target is not None else None
                if target is None or target.is_module or where is None or where[1] != path:
                    reexports.append(self._reexport(name, member, target, where))
                    continue
            obj = target if target is not None else member
            origin = obj.path if member.is_alias else None
            doc = self._object_doc(name, path, obj, origin, module)
            if isinstance(doc, ClassDoc):
                classes.append(doc)
            elif isinstance(doc, FunctionDoc):
                functions.append(doc)
            else:
                variables.append(doc)
        submodules = tuple(
            m.path
            for m in module.modules.values()
            if isinstance(m, griffe.Module) and self.documented.get(m.path, False)
        )
        exports = module.exports
        return ModuleDoc(
            name=dotted,
            path=self.collector.shown_paths.get(dotted, dotted.replace(".", "/")),
            docstring=docstring_of(module),
            sections=docstring_sections(module.docstring),
            classes=tuple(classes),
            functions=tuple(functions),
            variables=tuple(variables),
            reexports=tuple(reexports),
            submodules=submodules,
            all_names=tuple(e if isinstance(e, str) else e.name for e in exports)
            if exports is not None
            else None,
            documented=self.documented[dotted],
        )

    def _reexport(
        self, name: str, alias: Member, target: griffe.Object | None, where: tuple[str, str] | None
    ) -> Reexport:
        wildcard = getattr(alias, "wildcard", None)
        if wildcard:  # `from other.package import *`, which nothing here can expand
            return Reexport(name="*", target=str(wildcard), kind="wildcard")
        if target is None:
            return Reexport(name=name, target=str(getattr(alias, "target_path", "")))
        if target.is_module:
            documented = self.documented.get(target.path, False)
            return Reexport(
                name=name,
                target=target.path,
                kind="module",
                summary=first_line(docstring_of(target)),
                page=page_name(target.path) if documented else None,
            )
        return Reexport(
            name=name,
            target=target.path,
            kind=target.kind.value,
            summary=first_line(docstring_of(target)),
            page=where[0] if where else None,
            anchor=where[1] if where else None,
        )

    def _object_doc(
        self, name: str, path: str, obj: Member, origin: str | None, module: griffe.Module
    ) -> ClassDoc | FunctionDoc | VariableDoc:
        if isinstance(obj, griffe.Attribute):
            named = named_object(obj, module)
            if named is not None:  # `batched = _batched`: document the function under its public name
                return self._object_doc(name, path, named, origin or named.path, module)
        if isinstance(obj, griffe.Class):
            return self._class_doc(name, path, obj, origin)
        if isinstance(obj, griffe.Function):
            return function_doc(name, path, obj, origin)
        return variable_doc(name, path, obj, origin)

    def _class_doc(self, name: str, path: str, cls: griffe.Class, origin: str | None) -> ClassDoc:
        methods: list[FunctionDoc] = []
        attributes: list[VariableDoc] = []
        nested: list[ClassDoc] = []
        special_methods: list[FunctionDoc] = []
        special_attributes: list[VariableDoc] = []
        for member_name, member in cls.members.items():
            member_path = f"{path}.{member_name}"
            if not member.is_alias and is_special(member_name) and _listed_only(member_name, member):
                if isinstance(member, griffe.Function):
                    special_methods.append(function_doc(member_name, member_path, member, None))
                else:
                    special_attributes.append(variable_doc(member_name, member_path, member, None))
                continue
            if not self._shown_in_class(member_name, member):
                continue
            if isinstance(member, griffe.Function):
                methods.append(function_doc(member_name, member_path, member, None))
            elif isinstance(member, griffe.Class):
                nested.append(self._class_doc(member_name, member_path, member, None))
            elif isinstance(member, griffe.Attribute) and "property" in member.labels:
                methods.append(property_doc(member_name, member_path, member))
            else:
                attributes.append(variable_doc(member_name, member_path, member, None))
        keywords = [f"{key}={value}" for key, value in cls.keywords.items()]  # metaclass=..., total=False
        return ClassDoc(
            name=name,
            path=path,
            bases=tuple(str(b) for b in cls.bases) + tuple(keywords),
            decorators=tuple(str(d.value) for d in cls.decorators),
            docstring=docstring_of(cls),
            sections=docstring_sections(cls.docstring),
            methods=tuple(methods),
            attributes=tuple(attributes),
            classes=tuple(nested),
            special_methods=tuple(special_methods),
            special_attributes=tuple(special_attributes),
            lineno=cls.lineno,
            origin=origin,
        )


def _shared_prefix(module: str, path: str) -> int:
    """How many leading dotted parts ``module`` and ``path`` share."""
    count = 0
    for a, b in zip(module.split("."), path.split("."), strict=False):
        if a != b:
            break
        count += 1
    return count


def _listed_only(name: str, member: Member) -> bool:
    """A special member that is only listed with its signature (``__eq__``, ``__slots__``, ...): not
    ``__init__``/``__call__`` and without a docstring of its own (in full: pdoc's rule)."""
    return name not in ALWAYS_SHOWN and (member.docstring is None or member.is_attribute)


def _prepare_merge(module: griffe.Module, stub: griffe.Module) -> None:
    """Make way for what a stub declares about another package's names (griffe's merge fails on them).

    Such a name is an alias nothing here resolves: the stub's own declaration replaces it,
    and the stub's overloads for one are dropped."""

    def unresolved(name: str) -> bool:
        current = module.members.get(name)
        return current is not None and current.is_alias and final_target(current) is None

    for name, declared in stub.members.items():
        if not declared.is_alias and unresolved(name):
            module.del_member(name)
    for name in [n for n in stub.overloads if unresolved(n)]:
        del stub.overloads[name]


def _in_export_order(module: griffe.Module, members: list[tuple[str, Member]]) -> list[tuple[str, Member]]:
    """``members`` in the order ``__all__`` gives (the order the author chose), the rest after, as written."""
    if not module.exports:
        return members
    order = {e if isinstance(e, str) else e.name: i for i, e in enumerate(module.exports)}
    return sorted(members, key=lambda item: order.get(item[0], len(order)))


def _decode(shown: str, data: bytes) -> str:
    """The source as text, in the encoding it declares (PEP 263), else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise SourceError(shown, None, f"cannot decode: {exc}") from None
