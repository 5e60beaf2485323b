"""The parser child: griffe runs there, and once locked down it can read, list or run nothing of the workspace.

Each lock-down case runs in a real child interpreter (an audit hook cannot be removed once
added), started the way the worker starts its parser child (``python -P`` in ``/``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from doc_model import FIXTURES, extracted

from documentation_worker.apidoc import SourceError
from documentation_worker.limits import DocsLimits
from documentation_worker.parsing import ParserProcess
from documentation_worker.sources import read_package

pytestmark = pytest.mark.anyio

LOCKED = """
import os, sys
from documentation_worker.parse_child import LockedDown, lock_down
lock_down()
try:
    {action}
except LockedDown as exc:
    print("refused:", exc)
else:
    print("allowed")
"""


def in_locked_child(action: str) -> str:
    done = subprocess.run(
        [sys.executable, "-P", "-c", LOCKED.format(action=action)],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("print('the project ran')\nSECRET = 'sk-1'\n")
    return tmp_path


@pytest.mark.parametrize(
    ("action", "refusal"),
    [
        ("open({pkg!r}).read()", "refused: the parser child may not open '{pkg}'"),
        ("os.open({pkg!r}, os.O_RDONLY)", "refused: the parser child may not open '{pkg}'"),
        ("os.listdir({root!r})", "refused: the parser child may not os.listdir"),
        ("sys.path.insert(0, {root!r}); import pkg", "refused: the parser child may not"),
        (
            "exec(compile('x = 1', {pkg!r}, 'exec'))",
            "refused: the parser child may not run code from '{pkg}'",
        ),
        ("import subprocess; subprocess.run(['true'])", "refused: the parser child may not subprocess.Popen"),
        ("import socket; socket.create_connection(('127.0.0.1', 9))", "refused: the parser child may not"),
    ],
)
def test_once_locked_the_child_reads_lists_and_runs_nothing_of_the_workspace(
    project: Path, action: str, refusal: str
) -> None:
    pkg = str(project / "pkg" / "__init__.py")
    out = in_locked_child(action.format(pkg=pkg, root=str(project)))
    assert out.startswith(refusal.format(pkg=pkg)), out
    assert "the project ran" not in out


def test_the_interpreters_own_libraries_still_load_once_locked() -> None:
    # a codec is imported on first use: from the standard library, which is allowed
    assert in_locked_child("import encodings.cp1250; 'x'.encode('cp1250')") == "allowed"


async def test_the_child_builds_the_same_model_as_griffe_in_process() -> None:
    root = (FIXTURES / "patterns").resolve()
    found = read_package(root.parent, root, DocsLimits())
    async with ParserProcess(timeout=60, memory_mb=2048) as parser:
        for source in found.sources:
            await parser.parse(source)
        modules = await parser.finish(include_private=False, label="patterns")
    assert [dataclasses.asdict(m) for m in modules] == [dataclasses.asdict(m) for m in extracted(root)]


async def test_a_bad_file_is_named_and_the_child_goes_on_to_the_next_task() -> None:
    root = (FIXTURES / "shapes").resolve()
    found = read_package(root.parent, root, DocsLimits())
    async with ParserProcess(timeout=60, memory_mb=2048) as parser:
        with pytest.raises(SourceError) as info:
            await parser.parse(dataclasses.replace(found.sources[0], data=b"def broken(:\n"))
        assert (info.value.path, info.value.line) == ("shapes/__init__.py", 1)
        for source in found.sources[1:]:
            await parser.parse(source)
        modules = await parser.finish(include_private=False, label="shapes")
    assert {"shapes.geometry", "shapes.side_effects"} <= {m.name for m in modules}
