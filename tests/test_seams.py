"""The package seams the README draws, kept true: who may import whom.

The stub and the workers share only `pm_protocol`; neither imports the other, so either
can be replaced (a worker runs against upstream Marcus; the stub serves workers written
from the tutorial). Read with `ast` from the source, so nothing needs to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
