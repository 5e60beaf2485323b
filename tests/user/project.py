"""A new user's own project, made outside the repository, and the commands they run on it.

What issue 12's user had: a small package of their own (three functions), four pytest tests
with one failing, a Dockerfile, and a project file for the fleet. `make_project` writes it;
`fix_the_bug` is what they do on the host once the fleet blocks the failing test;
`make` runs a documented `make` command in the fleet's checkout as they would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp

from pm_agent_stub.testing import call_tool
from tests.helpers import REPO_ROOT

FAILING_TEST = "tests/test_shop.py::test_discount"
BUG, FIX = "price * (100 - 2 * percent) / 100", "price * (100 - percent) / 100"

SHOP = '''"""A tiny shop: totals, discounts and tax."""


def total(prices: list[float]) -> float:
    """The sum of the prices.

    >>> total([2, 3])
    5
    """
    return sum(prices)


def discount(price: float, percent: float) -> float:
    """`price` reduced by `percent` per cent."""
    return BUG


def with_tax(price: float, rate: float = 0.2) -> float:
    """`price` with tax at `rate`, rounded to cents."""
    return round(price * (1 + rate), 2)
'''.replace("BUG", BUG)

TESTS = """from shop import discount, total, with_tax


def test_total() -> None:
    assert total([2, 3]) == 5


def test_total_of_nothing() -> None:
    assert total([]) == 0


def test_discount() -> None:
    assert discount(100, 10) == 90


def test_with_tax() -> None:
    assert with_tax(10) == 12.0
"""

DOCKERFILE = """ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY shop/ shop/
CMD ["python", "-c", "import shop; print(shop.total([2, 3]))"]
"""


@dataclass(frozen=True)
class Project:
    path: Path
    image: str

    @property
    def name(self) -> str:
        return self.path.name


def make_project(home: Path, name: str, image: str) -> Project:
    """`home/src/<name>`: the package, its tests (one failing), a Dockerfile and fleet.yaml."""
    root = home / "src" / name
    (root / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shop" / "__init__.py").write_text(SHOP)
    (root / "tests" / "test_shop.py").write_text(TESTS)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0.1.0"\n')
    (root / "Dockerfile").write_text(DOCKERFILE)
    # Paths are relative to the workspace, where the project is the folder <name>.
    (root / "fleet.yaml").write_text(f"""project: {name}
tasks:
  - id: api-docs
    name: Write the shop API reference
    required_skills: [documentation, api-docs]
    payload: {{path: {name}/shop}}
  - id: tests
    name: Run the shop tests
    required_skills: [testing]
    payload: {{path: {name}, command: "python -m pytest -q tests", env: {{PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}}}}
  - id: image
    name: Build and smoke-test the shop image
    required_skills: [docker]
    dependencies: [tests]
    payload: {{context: {name}, tag: "{image}", smoke_command: "python -c 'import shop; print(shop.total([2, 3]))'",
               expect_output: "5"}}
""")
    return Project(root, image)


def fix_the_bug(project: Project) -> None:
    source = project.path / "shop" / "__init__.py"
    source.write_text(source.read_text().replace(BUG, FIX))


def uv() -> str | None:
    """The uv `make` uses: on PATH, or the one `make install` bootstrapped into this checkout's .tools/."""
    bootstrapped = REPO_ROOT / ".tools" / "bin" / "uv"
    return shutil.which("uv") or (str(bootstrapped) if bootstrapped.is_file() else None)


def make_argv(checkout: Path, *args: str) -> list[str]:
    """`make ARGS` in the fleet's checkout, as the user types it (told where uv is, so a copy of the
    checkout does not bootstrap its own)."""
    found = uv()
    return ["make", "--no-print-directory", "-C", str(checkout), *args, *([f"UV={found}"] if found else [])]


def make(
    checkout: Path, *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        make_argv(checkout, *args), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def user_env(**extra: str) -> dict[str, str]:
    """The user's shell: none of the test run's PM_/AGENT_/COMPOSE_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "COMPOSE_", "LOG_"))}
    env.update(extra)
    return env


def board(url: str) -> dict[str, dict[str, Any]]:
    """Task id -> its get_task_context, read from the running stub."""

    async def read() -> dict[str, dict[str, Any]]:
        async with mcp.Client(url) as client:
            listed = await call_tool(client, "list_tasks", {"limit": 200})  # a user's board: one page
            assert listed.get("success"), listed
            return {
                t["task_id"]: await call_tool(client, "get_task_context", {"task_id": t["task_id"]})
                for t in listed["tasks"]
            }

    return anyio.run(read)


def statuses(url: str) -> dict[str, str]:
    return {task_id: ctx["task"]["status"] for task_id, ctx in board(url).items()}


def agents(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with mcp.Client(url) as client:
            listed: list[dict[str, Any]] = (await call_tool(client, "list_registered_agents", {}))["agents"]
            return listed

    return anyio.run(read)


def board_dirs(name: str) -> list[Path]:
    """The local boards `make demo PROJECT_DIR=.../<name>` keeps (one per folder path), and their locks."""
    return sorted((REPO_ROOT / ".run" / "projects").glob(f"{name}-*"))


def forget_boards(name: str) -> None:
    for found in board_dirs(name):
        shutil.rmtree(found) if found.is_dir() else found.unlink()


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
