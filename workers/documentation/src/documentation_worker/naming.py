"""Which modules the API reference leaves out by default, and what their pages are called.

Tests are not API: a package that ships its test suite inside (``toolz/tests/``) would
otherwise get a page per test module. Private modules (a dotted part starting with ``_``,
``__main__`` included) get no page of their own; their public objects still appear where a
public module re-exports them. ``payload.include_tests`` and ``payload.include_private``
turn either rule off.
"""

from __future__ import annotations

__all__ = ["TEST_FOLDERS", "is_private_module", "is_test_file", "page_name"]

#: Folders holding a test suite (as a package's sub-folder).
TEST_FOLDERS = frozenset({"tests", "test", "testing_support"})


def page_name(dotted: str) -> str:
    """The page a module is written to: ``calc.ops`` -> ``calc.ops.md``."""
    return f"{dotted}.md"


def is_private_module(dotted: str) -> bool:
    """``pkg._impl``, ``pkg._impl.core``, ``pkg.__main__``: a part starting with ``_``."""
    return any(part.startswith("_") for part in dotted.split("."))


def is_test_file(name: str) -> bool:
    """``test_x.py``, ``x_test.py``, ``tests.py``, ``conftest.py`` (and their ``.pyi``)."""
    stem = name.rsplit(".", 1)[0]
    return stem.startswith("test_") or stem.endswith("_test") or stem in {"test", "tests", "conftest"}
