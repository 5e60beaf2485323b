"""`from pm_worker import X` works for every public name, for the interpreter and for type checkers.

pm_worker names its exports three times, each for another reader: the `TYPE_CHECKING`
imports (type checkers), `_EXPORTS` (the lazy runtime import, PEP 562) and `__all__`
(mypy's explicit re-export and `import *`). These tests keep the three the same list.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pm_worker


def _typed_imports() -> dict[str, str]:
    """{name: module} of the imports under `if TYPE_CHECKING:` in pm_worker/__init__.py."""
    tree = ast.parse(Path(pm_worker.__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.dump(imp)
                assert imp.module is not None, ast.dump(imp)
                found.update({alias.name: imp.module.removeprefix("pm_worker.") for alias in imp.names})
    return found


def test_every_public_name_is_the_object_its_module_defines() -> None:
    for name in pm_worker.__all__:
        module = importlib.import_module(f"pm_worker.{pm_worker._EXPORTS[name]}")
        assert getattr(pm_worker, name) is getattr(module, name), name


def test_type_checkers_see_the_names_the_runtime_exports() -> None:
    assert _typed_imports() == pm_worker._EXPORTS
    assert sorted(pm_worker.__all__) == sorted(pm_worker._EXPORTS)
