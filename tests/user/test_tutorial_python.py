"""Issue 25: the upstream tutorial's `python pm_agent_mcp_server.py` with a plain `python` first on PATH.

The tutorial's worker spawns `StdioServerParameters(command="python", args=["pm_agent_mcp_server.py"])`;
outside the project's venv that `python` has none of our packages and died on
`ModuleNotFoundError: pm_agent_stub.cli`. Here `python` is a system interpreter that cannot
import `mcp` (skipped where there is none): the file hands over to the project's `.venv`
Python and serves the tutorial's calls. A copy of the file in a folder without a venv says
in one line how to make one, on stderr, and exits 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from pm_agent_stub.testing import load_tasks, read_events, task
from tests.helpers import REPO_ROOT

SERVER = REPO_ROOT / "pm_agent_mcp_server.py"


def plain_python() -> str:
    """A Python 3 outside this project's venv that cannot import mcp (skip if there is none)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
        if not candidate or not Path(candidate).is_file():
            continue
        probe = subprocess.run(
            [
                candidate,
                "-c",
                "import sys, importlib.util; sys.exit(importlib.util.find_spec('mcp') is not None)",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            return candidate
    pytest.skip("no Python 3 here lacks the project's packages (the case under test)")


def path_with_python(tmp_path: Path, python: str) -> str:
    """A PATH whose first `python` is `python` (as on a machine where only the system one is)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(python)
    return f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"


def test_the_tutorials_spawn_works_with_a_python_outside_the_venv(tmp_path: Path) -> None:
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the project's .venv is missing (make install)")
    python = plain_python()
    db = tmp_path / "stdio.db"
    load_tasks(db, task("api-docs", "documentation", name="Document the REST API"))
    env = {"PATH": path_with_python(tmp_path, python), "PM_AGENT_DB": str(db), "HOME": str(tmp_path)}
    params = StdioServerParameters(
        command="python", args=["pm_agent_mcp_server.py"], cwd=str(REPO_ROOT), env=env
    )

    async def tutorial() -> dict[str, object]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            agent = {
                "agent_id": "doc-worker-001",
                "name": "Documentation Worker",
                "role": "docs",
                "skills": ["documentation"],
            }
            assert json.loads((await session.call_tool("register_agent", agent)).content[0].text)["success"]
            got = await session.call_tool("request_next_task", {"agent_id": "doc-worker-001"})
            answer: dict[str, object] = json.loads(got.content[0].text)
            return answer

    answer = anyio.run(tutorial)
    assert answer["has_task"], answer
    assert read_events(db, kind="assigned", task_id="api-docs"), "the stub behind the plain python served it"


def test_without_the_projects_venv_it_says_how_to_make_one(tmp_path: Path) -> None:
    python = plain_python()
    copy = tmp_path / "checkout"
    copy.mkdir()
    shutil.copy(SERVER, copy / "pm_agent_mcp_server.py")
    ran = subprocess.run(
        ["python", "pm_agent_mcp_server.py"],
        cwd=copy,
        env={"PATH": path_with_python(tmp_path, python), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    assert ran.stdout == ""  # stdout is the MCP stream: nothing else ever goes there
    [line] = ran.stderr.splitlines()
    assert "cannot import the PM Agent stub" in line
    assert f"`make install` in {copy}" in line
    assert "Traceback" not in ran.stderr
