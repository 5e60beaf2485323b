"""The model of a fixture package as the parser child builds it, made in the test's own process."""

from __future__ import annotations

from pathlib import Path

from documentation_worker.apidoc import ModuleDoc
from documentation_worker.extract import Collector
from documentation_worker.limits import DocsLimits
from documentation_worker.sources import read_package

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def extracted(root: Path, *, include_private: bool = False, include_tests: bool = False) -> list[ModuleDoc]:
    """The model of the package at `root`: the worker's walk and griffe, in this process (the worker
    runs the same code in its locked-down child; tests of the child are in test_doc_child.py)."""
    root = root.resolve()
    found = read_package(root.parent, root, DocsLimits(), include_tests=include_tests)
    collector = Collector()
    for source in found.sources:
        collector.add(source.dotted, source.path, source.data)
    return collector.finish(include_private=include_private)


def by_name(modules: list[ModuleDoc], name: str) -> ModuleDoc:
    return next(m for m in modules if m.name == name)
