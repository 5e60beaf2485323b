"""Hold a generated reference to griffe's own view of a package: names it lists, links that lead nowhere.

Used by the tests and by ``bench/api_coverage.py``. The pages are read back as Markdown
(not through the model they were made from): anchors are the ``<a id="...">`` tags every
documented object carries, plus the slugs Markdown renderers give headings; a link is
internal when it points at ``#anchor`` or at a page of the folder. The reference is griffe
loading the package from disk, as mkdocstrings does (:func:`griffe_public_names`); it runs
on a copy the caller trusts (a test fixture, a package from PyPI), never in the worker.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import griffe

from documentation_worker.naming import TEST_FOLDERS, is_private_module, is_test_file

__all__ = ["anchors", "dead_links", "documented_names", "griffe_public_names", "links"]

_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1")


def _prose(page: str) -> str:
    """The page without its code blocks and inline code (where brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", page))


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: str) -> set[str]:
    """Every anchor a page offers."""
    prose = _FENCE.sub("", page)  # an anchor sits next to inline code: keep that
    return set(_ANCHOR.findall(prose)) | {_slug(h) for h in _HEADING.findall(prose)}


def links(page: str) -> list[str]:
    """Every Markdown link target of a page (outside code blocks)."""
    return _LINK.findall(_prose(page))


def documented_names(pages: Mapping[str, str]) -> set[str]:
    """The dotted names the pages document (each object's anchor)."""
    return {name for text in pages.values() for name in _ANCHOR.findall(_FENCE.sub("", text))}


def dead_links(pages: Mapping[str, str]) -> list[str]:
    """``page: target (why)`` for every internal link that leads nowhere; external links are not checked."""
    offered = {name: anchors(text) for name, text in pages.items()}
    dead = []
    for name, text in sorted(pages.items()):
        for target in links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            page, _, fragment = target.partition("#")
            page = page or name
            if "/" in page:
                continue  # outside this folder (a tutorial's link to the reference, ...)
            if page not in offered:
                dead.append(f"{name}: {target} (no page {page})")
            elif fragment and fragment not in offered[page]:
                dead.append(f"{name}: {target} (no anchor {fragment} on {page})")
    return dead


def griffe_public_names(parent: Path, packages: Sequence[str]) -> dict[str, str]:
    """Every public name griffe lists in the ``packages`` of ``parent``: ``{dotted name: kind}``.

    griffe's rules (``Object.is_public``) with the conventions its public-API extensions add
    (``from a import *`` without ``__all__``, ``from a import x as x``), aliases resolved
    inside the package only. Modules: all but private ones and the test suite (the
    reference's defaults). Packages are loaded together (attrs re-exports attr). Class members are listed under the class's own path, or, for a
    class defined in a private module, under the first public name it has. Kinds:
    griffe's (``module``, ``class``, ``function``, ``attribute``, ...), or ``unresolved``.
    """
    loader = griffe.GriffeLoader(search_paths=[str(parent)], allow_inspection=False)
    tops = [loader.load(package) for package in packages]
    loader.resolve_aliases(implicit=True, external=False)
    modules = [m for top in tops if isinstance(top, griffe.Module) for m in (top, *_submodules(top))]
    for module in modules:  # the two re-export conventions
        source = module.filepath if isinstance(module.filepath, Path) else None
        redundant = set()
        if source is not None and source.suffix == ".py":
            for node in ast.walk(ast.parse(source.read_bytes())):
                if isinstance(node, ast.ImportFrom):
                    redundant |= {a.asname for a in node.names if a.asname and a.asname == a.name}
        for member in module.members.values():
            if isinstance(member, griffe.Alias) and (
                (member.wildcard_imported and not module.exports) or member.name in redundant
            ):
                member.public = True
    names: dict[str, str] = {}
    placed: set[str] = set()
    for module in modules:
        names[module.path] = "module"
        for name, member in module.members.items():
            if not member.is_public or name == "__all__":
                continue
            try:
                if member.is_module:
                    continue
                target = member.final_target if isinstance(member, griffe.Alias) else member
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                names[f"{module.path}.{name}"] = "unresolved"
                continue
            names[f"{module.path}.{name}"] = target.kind.value
            home = target.parent.path if target.parent is not None else ""
            canonical = not member.is_alias or is_private_module(home)
            ours = target.package.name in packages  # another package's classes are that package's to list
            if isinstance(target, griffe.Class) and canonical and ours and target.path not in placed:
                placed.add(target.path)
                _class_members(target, f"{module.path}.{name}", names)
    return names


def _submodules(module: griffe.Module) -> list[griffe.Module]:
    found: list[griffe.Module] = []
    for name, member in module.members.items():
        if not isinstance(member, griffe.Module) or member.is_alias:
            continue
        if name.startswith("_") or name in TEST_FOLDERS or is_test_file(f"{name}.py"):
            continue
        found += [member, *_submodules(member)]
    return found


def _class_members(cls: griffe.Class, path: str, names: dict[str, str]) -> None:
    for name, member in cls.members.items():
        if member.is_alias or not member.is_public:
            continue
        names[f"{path}.{name}"] = member.kind.value
        if isinstance(member, griffe.Class):
            _class_members(member, f"{path}.{name}", names)
