"""The llm worker's layout, kept true: imports run one way, modules stay small, log events are names.

Read from the source with `ast` (nothing imported), like tests/test_seams.py. Imports inside
functions count: a lazy import closes a circle as surely as a top-level one, it only
hides it until the call.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import REPO_ROOT

PACKAGE = "llm_worker"
ROOT = REPO_ROOT / "workers/llm/src/llm_worker"
MAX_LINES = 500
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's own modules `path` imports (anywhere in it), by their full names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
    return {name for name in found if name in known}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circle() -> None:
    mods = modules()
    graph = {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}
    assert graph["llm_worker.backends.anthropic"] >= {"llm_worker.backends.errors"}  # the walk sees imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " → ".join(cycle or [])


def test_the_circle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_one_module_per_provider_errors_apart() -> None:
    backends = {p.stem for p in (ROOT / "backends").glob("*.py")}
    assert {"anthropic", "openai", "errors", "http"} <= backends
    mods = modules()
    for provider in ("anthropic", "openai"):
        imported = imports_of(mods[f"llm_worker.backends.{provider}"], set(mods))
        shared = {"llm_worker.backends.errors", "llm_worker.backends.http"}
        others = {m for m in imported if m.startswith("llm_worker.backends.")} - shared
        assert not others, (
            f"backends/{provider}.py imports {sorted(others)}: providers share only errors, http"
        )


def test_no_module_over_500_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_log_events_are_snake_case_names() -> None:
    """`log.info("model_turn", step=3)`, never a sentence or an f-string: fields carry the values."""
    wrong = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
            ):
                continue
            first = node.args[0] if node.args else None
            if not (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and re.fullmatch(r"[a-z][a-z0-9_]*", first.value)
            ):
                wrong.append(f"{name}:{node.lineno} {ast.unparse(first) if first else '(no event)'}")
    assert not wrong, "log events that are not snake_case names: " + "; ".join(wrong)
