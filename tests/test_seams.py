"""The seams docs/architecture.md draws, kept true: who may import whom.

Between packages: the stub and the workers share only `pm_protocol`; neither imports the
other, so either can be replaced (a worker runs against upstream Marcus; the stub serves
workers written from the tutorial). Inside them, the rooms: the board knows nothing of the
server around it, only its SQL layer knows the database driver, a dialect is reached from
`PMClient` and never reaches back, Marcus's translation pieces do no I/O, and no package has
an import circle. Read with `ast` from the source, so nothing needs to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pm_protocol.errors import ERROR_CODES
from pm_protocol.literals import AGENT_STATES, PRIORITIES, REPORT_STATUSES, SEVERITIES, TASK_STATUSES
from tests.helpers import REPO_ROOT

OURS = (
    "pm_protocol",
    "pm_worker",
    "pm_agent_stub",
    "documentation_worker",
    "testing_worker",
    "devops_worker",
    "llm_worker",
)
PACKAGES = {
    "pm_protocol": REPO_ROOT / "protocol/src/pm_protocol",
    "pm_worker": REPO_ROOT / "shared/src/pm_worker",
    "pm_agent_stub": REPO_ROOT / "pm_agent_stub/src/pm_agent_stub",
    **{
        f"{w}_worker": REPO_ROOT / f"workers/{w}/src/{w}_worker"
        for w in ("documentation", "testing", "devops", "llm")
    },
}
MAY_IMPORT = {
    "pm_protocol": set(),
    "pm_agent_stub": {"pm_protocol"},
    "pm_worker": {"pm_protocol"},
    **{f"{w}_worker": {"pm_protocol", "pm_worker"} for w in ("documentation", "testing", "devops", "llm")},
}
#: (module, imported package): the one place a seam is crossed on purpose, lazily
ALLOWED_CROSSINGS = {("pm_worker/testing.py", "pm_agent_stub")}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name in OURS}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_package_imports_only_what_its_seam_allows(package: str) -> None:
    root = PACKAGES[package]
    files = sorted(root.rglob("*.py"))
    assert files, f"no source found for {package} at {root}"
    wrong = []
    for path in files:
        where = f"{package}/{path.relative_to(root)}"
        for other in imported_packages(path) - {package} - MAY_IMPORT[package]:
            if (where, other) not in ALLOWED_CROSSINGS:
                wrong.append(f"{where} imports {other}")
    assert not wrong, "seams crossed (README 'Architecture'): " + "; ".join(wrong)


# -- rooms inside a package ---------------------------------------------------------------


def module_imports(path: Path, package: str, *, type_checking: bool = True) -> set[str]:
    """The modules of `package` (and `sqlite3`) that `path` imports, as dotted names under it;
    without `type_checking`, leaving out the imports under `if TYPE_CHECKING:` (annotations
    only: they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name == "sqlite3":
                found.add("sqlite3")
            elif name.startswith(package + "."):
                found.add(name[len(package) + 1 :])
    return found


def modules_of(package: str) -> dict[str, Path]:
    root = PACKAGES[package]
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _known(found: set[str], modules: dict[str, Path]) -> set[str]:
    """The imported names that are modules (`from a.b import c` names a.b, and a.b.c if it is one)."""
    return {name for name in found if name in modules or name == "sqlite3"}


# (package, room, the modules of the package the room may import; a prefix ending in "."
# means the room's own modules)
ROOMS = [
    (
        "pm_agent_stub",
        "board.",
        {"board", "errors", "logs", "db", "schema", "suggestions", "timefmt", "project_file", "settings"},
        "the board knows nothing of the server around it (tools, notifier, HTTP, dashboard, CLI)",
    ),
    (
        "pm_worker",
        "dialects.",
        {"dialects", "errors", "models", "marcus", "settings", "protocol_settings"},
        "a dialect is reached from PMClient and never reaches back (client, worker, connection)",
    ),
    (
        "pm_worker",
        "marcus.",
        {"marcus", "errors"},
        "Marcus's translation pieces read and build JSON; the wire is the dialect's",
    ),
]
#: the only modules that import the database driver: the SQL layer, the schema, the test kit
SQLITE_MODULES = {"db", "schema", "board.sql", "testing"}


@pytest.mark.parametrize(
    ("package", "room", "allowed", "why"), ROOMS, ids=[f"{p}.{r}" for p, r, _, _ in ROOMS]
)
def test_each_room_imports_only_what_it_may(package: str, room: str, allowed: set[str], why: str) -> None:
    modules = modules_of(package)
    wrong = []
    for name, path in modules.items():
        if not (name + ".").startswith(room):
            continue
        for other in _known(module_imports(path, package), modules) - {"sqlite3"}:
            if not any(other == a or other.startswith(a + ".") for a in allowed):
                wrong.append(f"{package}.{name} imports {package}.{other}")
    assert not wrong, f"{why}: " + "; ".join(sorted(wrong))


def test_only_the_sql_layer_knows_the_database_driver() -> None:
    """The rules (board.py, lifecycle, order, checks, the router) reach the database through
    `board.store`/`board.sql` alone: the seam a second backend (issue 21) implements."""
    modules = modules_of("pm_agent_stub")
    users = {name for name, path in modules.items() if "sqlite3" in module_imports(path, "pm_agent_stub")}
    assert users <= SQLITE_MODULES, (
        f"sqlite3 imported outside the SQL layer: {sorted(users - SQLITE_MODULES)}"
    )


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, at import time or lazily inside a
    function (a lazy import hides a circle from Python, not from a reader). Importing `a.b.c`
    runs the packages `a` and `a.b` first, except those the importer sits in (already running)."""
    modules = modules_of(package)
    graph = {}
    for name, path in modules.items():
        deps = _known(module_imports(path, package, type_checking=False), modules) - {"sqlite3", name}
        deps |= {a for dep in deps for a in _ancestors(dep)}
        own = _ancestors(name) | {name}
        graph[name] = {d for d in deps if d not in own}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of the graph (module, ..., the same module), or [] (depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        done.add(node)
        return []

    for start in sorted(graph):
        if start not in done:
            found = visit(start, [start])
            if found:
                return found
    return []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_package_has_an_import_circle(package: str) -> None:
    """No two modules need each other, even through a lazy import: one is below the other."""
    circle = find_circle(import_graph(package))
    assert not circle, f"{package}: import circle " + " -> ".join(circle)


# -- one definition of each vocabulary ---------------------------------------------------------

VOCABULARIES = {
    "task statuses": frozenset(TASK_STATUSES),
    "agent states": frozenset(AGENT_STATES),
    "priorities": frozenset(PRIORITIES),
    "severities": frozenset(SEVERITIES),
    "report statuses": frozenset(REPORT_STATUSES),
    "error codes": frozenset(ERROR_CODES),
}


def spelled_vocabularies(path: Path) -> list[str]:
    """Each tuple, list, set or Literal[...] of string constants that is a whole vocabulary."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts):
                found += [
                    f"{name} at line {node.lineno}" for name, v in VOCABULARIES.items() if set(values) == v
                ]
    return found


@pytest.mark.parametrize("package", sorted(set(PACKAGES) - {"pm_protocol"}))
def test_no_vocabulary_is_spelled_outside_pm_protocol(package: str) -> None:
    """Statuses, severities, priorities and error codes come from `pm_protocol.literals` (and
    `pm_protocol.errors.ERROR_CODES`), derived from their Literal types; a copy elsewhere drifts."""
    root = PACKAGES[package]
    wrong = []
    for path in sorted(root.rglob("*.py")):
        where = f"{package}/{path.relative_to(root)}"
        wrong += [f"{where}: {found}" for found in spelled_vocabularies(path)]
    assert not wrong, "import these from pm_protocol.literals instead: " + "; ".join(wrong)
