"""The package seams the README draws, kept true: who may import whom.

The stub and the workers share only `pm_protocol`; neither imports the other, so either
can be replaced (a worker runs against upstream Marcus; the stub serves workers written
from the tutorial). Read with `ast` from the source, so nothing needs to be importable.
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


# -- one definition of each vocabulary ---------------------------------------------------------

VOCABULARIES = {
    "task statuses": frozenset(TASK_STATUSES),
    "agent states": frozenset(AGENT_STATES),
    "priorities": frozenset(PRIORITIES),
    "severities": frozenset(SEVERITIES),
    "report statuses": frozenset(REPORT_STATUSES),
    "error codes": frozenset(ERROR_CODES),
}
#: modules still spelling one, with whose work removes it (drop the entry once merged)
SPELLED_UNTIL_FIXED = {"llm_worker/tools.py"}  # h24llm: `Severity` from pm_protocol.literals


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
        if where in SPELLED_UNTIL_FIXED:
            continue
        wrong += [f"{where}: {found}" for found in spelled_vocabularies(path)]
    assert not wrong, "import these from pm_protocol.literals instead: " + "; ".join(wrong)
