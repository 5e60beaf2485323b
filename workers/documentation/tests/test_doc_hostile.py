"""Hostile source trees, against the real worker process and the real stub (issue 17).

Whoever can write to the shared workspace can plant links, loops, huge files and parser
bombs in a folder a documentation task names. Each case here is the attack as it was
reported; the worker must end it promptly with the docs it may write, or with a blocker
that names the file and what to do, and must never read anything outside the workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_doc_integration import run_worker, task_context

from pm_agent_stub.testing import StubProcess, load_tasks, read_events, start_stub, wait_until
from tests.helpers import REPO_ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = f"sk-outside-{uuid.uuid4().hex[:8]}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hostile_workspace(root: Path) -> Path:
    """A workspace and, beside it, a folder the worker must never read."""
    outside = root / "elsewhere"
    write(outside / "secret.py", f'API_KEY = "{SECRET}"\n\n\ndef leaked() -> str:\n    """{SECRET}"""\n')
    ws = root / "workspace"
    pkg = ws / "lib" / "pkg"
    write(pkg / "__init__.py", '"""A package with links planted in it."""\n')
    write(pkg / "core.py", 'def alpha(x: int) -> int:\n    """Alpha."""\n    return x\n')
    write(
        ws / "lib" / "common" / "shared.py",
        'def beta() -> None:\n    """Beta, linked in from a sibling."""\n',
    )
    (pkg / "leakdir").symlink_to(outside)  # a folder link out of the workspace
    (pkg / "leak.py").symlink_to(outside / "secret.py")  # a file link out of it
    (pkg / "shared.py").symlink_to(Path("..") / "common" / "shared.py")  # a file link that stays inside
    (pkg / "l1").symlink_to(".")  # loops
    (pkg / "l2").symlink_to(".")
    write(ws / "loop" / "mod.py", '"""The issue\'s loop: l1 -> ., l2 -> ."""\n')
    (ws / "loop" / "l1").symlink_to(".")
    (ws / "loop" / "l2").symlink_to(".")
    line = "x = 1  # padding the module to 50 MB\n"
    write(ws / "big" / "huge.py", line * (50_000_000 // len(line) + 1))
    write(ws / "deep" / "nested.py", "x = " + "-" * 100_000 + "1\n")  # the parser's stack: MemoryError
    write(ws / "chain" / "attrs.py", "x = " + "a." * 100_000 + "b\n")  # RecursionError
    return ws


@pytest.fixture(scope="module")
def board(stub: StubProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One worker run over five hostile tasks; what the board and the workspace say afterwards."""
    ws = hostile_workspace(tmp_path_factory.mktemp("docs-hostile"))
    skill = f"hostile-{uuid.uuid4().hex[:8]}"
    tasks = {
        "links": {"path": "lib/pkg", "output": "site/links/"},
        "loop": {"path": "loop", "output": "site/loop/"},
        "big": {"path": "big", "output": "site/big/"},
        "deep": {"path": "deep", "output": "site/deep/"},
        "chain": {"path": "chain", "output": "site/chain/"},
    }
    load_tasks(
        stub.db,
        *(
            {
                "id": f"{skill}-{name}",
                "name": f"Docs for {name}",
                "required_skills": [skill],
                "payload": payload,
            }
            for name, payload in tasks.items()
        ),
    )
    code, log = run_worker(stub, ws, skill, max_tasks=len(tasks))
    assert code == 0, log
    return {"workspace": ws, "log": log, **{name: task_context(stub, f"{skill}-{name}") for name in tasks}}


def test_links_out_of_the_workspace_are_never_followed(board: dict[str, Any]) -> None:
    context = board["links"]
    assert context["task"]["status"] == "done", context
    site = board["workspace"] / "site" / "links"
    assert sorted(p.name for p in site.iterdir()) == [
        ".api-docs.json",
        "index.md",
        "pkg.core.md",
        "pkg.md",
        "pkg.shared.md",
    ]
    for page in site.iterdir():
        assert SECRET not in page.read_text(), page
    assert SECRET not in str(context)
    message = context["progress_log"][-1]["message"]
    assert message.endswith(
        " (not read: lib/pkg/l1 (a link to a folder: never followed); "
        "lib/pkg/l2 (a link to a folder: never followed); "
        "lib/pkg/leak.py (a link to a file outside the workspace: never followed); "
        "lib/pkg/leakdir (a link to a folder: never followed))"
    ), message
    assert "def beta() -> None" in (site / "pkg.shared.md").read_text()  # a link inside is read


def test_a_folder_linked_to_itself_ends_promptly(board: dict[str, Any]) -> None:
    context = board["loop"]
    assert context["task"]["status"] == "done", context
    assert sorted(p.name for p in (board["workspace"] / "site" / "loop").glob("*.md")) == [
        "index.md",
        "mod.md",
    ]
    assert "not read: loop/l1 (a link to a folder: never followed)" in context["progress_log"][-1]["message"]


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(board: dict[str, Any]) -> None:
    context = board["big"]
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    size = (board["workspace"] / "big" / "huge.py").stat().st_size
    assert blocker["description"].startswith(
        f"big/huge.py is {size:,} bytes, over the 1,048,576-byte cap per file (DOCS_MAX_FILE_BYTES); "
        "it was not read or parsed."
    ), blocker
    assert blocker["severity"] == "high"
    assert [e["message"] for e in context["progress_log"]] == ["Analysing big"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (
            "deep",
            "deep/nested.py: too large or too deeply nested to parse within DOCS_PARSE_MEMORY_MB=2048 "
            "(MemoryError); fix the file, then resolve this blocker",
        ),
        (
            "chain",
            "chain/attrs.py: nested too deeply to document (RecursionError); "
            "fix the file, then resolve this blocker",
        ),
    ],
)
def test_parser_bombs_are_blockers_naming_the_file(board: dict[str, Any], name: str, words: str) -> None:
    context = board[name]
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    assert blocker["description"] == words


def test_caps_on_files_per_task(stub: StubProcess, tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", ws / "lib" / "shapes")
    skill = f"hostile-{uuid.uuid4().hex[:8]}"
    load_tasks(
        stub.db,
        {
            "id": f"{skill}-many",
            "name": "Too many files",
            "required_skills": [skill],
            "payload": {"path": "lib/shapes"},
        },
    )
    code, log = run_worker(stub, ws, skill, max_tasks=1, DOCS_MAX_FILES="3")
    assert code == 0, log
    context = task_context(stub, f"{skill}-many")
    [blocker] = context["blockers"]
    assert blocker["description"] == (
        "more than 3 Python files under lib/shapes (DOCS_MAX_FILES); document a sub-package, or raise the cap"
    )
    assert not (ws / "docs").exists()


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append((int(entry.name), cmdline))
    return found


def gone(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_stuck_parser_does_not_stop_the_heartbeat(tmp_path: Path) -> None:
    """The parser child is frozen (SIGSTOP) mid-task: the lease (3 s) stays alive through the
    worker's heartbeats, and the parse time limit (9 s) ends the task with a blocker naming the file."""
    ws = tmp_path / "workspace"
    body = "".join(
        f"def f{i}(a: int, b: str = 'x') -> int:\n    '''Doc {i}.'''\n    return a\n\n" for i in range(150)
    )
    for n in range(200):
        write(ws / "many" / f"m{n:03d}.py", body)
    stub = start_stub(tmp_path / "board.db", env={"PM_LEASE_SECONDS": "3"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_", "DOCS_"))}
    env.update(
        {
            "PM_AGENT_URL": stub.url,
            "WORKSPACE": str(ws),
            "AGENT_ID": "docs-stuck-parser",
            "MAX_TASKS": "1",
            "POLL_WAIT_SECONDS": "1",
            "HEARTBEAT_SECONDS": "0.3",
            "LOG_FORMAT": "json",
            "HEALTH_DIR": str(tmp_path / "health"),
            "DOCS_PARSE_TIMEOUT_SECONDS": "9",
        }
    )
    load_tasks(
        stub.db,
        {
            "id": "many",
            "name": "Many modules",
            "required_skills": ["documentation"],
            "payload": {"path": "many"},
        },
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "documentation_worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        [(parser, _)] = wait_until(
            lambda: [c for c in children_of(worker.pid) if "documentation_worker.parse_child" in c[1]],
            timeout=60,
            interval=0.005,
            message="the parser child",
        )
        os.kill(parser, signal.SIGSTOP)
        stopped = time.monotonic()
        out, _ = worker.communicate(timeout=120)
        frozen_for = time.monotonic() - stopped
        context = task_context(stub, "many")
        assert context["task"]["status"] == "blocked", out.decode(errors="replace")
        [blocker] = context["blockers"]
        assert re.fullmatch(
            r"many/m\d{3}\.py: parsing took longer than 9 s \(DOCS_PARSE_TIMEOUT_SECONDS\); the file is too large "
            r"or too complex to document; fix the file, then resolve this blocker",
            blocker["description"],
        ), blocker
        # frozen for 3 lease lengths and more, yet never expired: the heartbeats went on
        assert frozen_for > 3 * 3
        assert read_events(stub.db, "expired", "many") == []
        assert [e["attempt"] for e in read_events(stub.db, "assigned", "many")] == [1]
        wait_until(lambda: gone(parser), timeout=10, message="the frozen parser killed")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        stub.stop()


# --------------------------------------------------------------------------- writing


class HoldingProxy:
    """A TCP relay between the worker and the stub that holds the first request carrying `marker`
    until `release()`: the worker is then parked at a known point of its task (its call waits)."""

    def __init__(self, target_port: int, marker: bytes) -> None:
        self.marker = marker
        self.target_port = target_port
        self.holding = threading.Event()
        self._release = threading.Event()
        self._armed = True
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        seen = b""
        try:
            while data := src.recv(65536):
                if watch:
                    seen = (seen + data)[-(len(data) + len(self.marker)) :]
                    with self._lock:
                        hold = self._armed and self.marker in seen
                        if hold:
                            self._armed = False
                    if hold:
                        self.holding.set()
                        self._release.wait(60)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def start_docs_worker(url: str, ws: Path, tmp: Path, agent_id: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_", "DOCS_"))}
    env.update(
        {
            "PM_AGENT_URL": url,
            "WORKSPACE": str(ws),
            "AGENT_ID": agent_id,
            "MAX_TASKS": "1",
            "POLL_WAIT_SECONDS": "1",
            "LOG_FORMAT": "json",
            "HEALTH_DIR": str(tmp / "health"),
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "documentation_worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(worker: subprocess.Popen[bytes]) -> str:
    try:
        out, _ = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_planted_temp_file_links_are_not_followed(stub: StubProcess, tmp_path: Path) -> None:
    """The old temp name `.{page}.{pid}.tmp` was predictable: a link planted there was written through."""
    ws = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", ws / "shapes")
    victims = tmp_path / "elsewhere"
    victims.mkdir()
    out = ws / "docs" / "d6"
    out.mkdir(parents=True)
    skill = f"plant-{uuid.uuid4().hex[:8]}"
    worker = start_docs_worker(stub.url, ws, tmp_path, f"docs-{skill}")
    try:
        for page in ("index.md", "shapes.md"):
            (victims / page).write_text("VICTIM\n")
            (out / f".{page}.{worker.pid}.tmp").symlink_to(victims / page)  # the old temp name
        (victims / "final.txt").write_text("VICTIM\n")
        (out / "shapes.units.md").symlink_to(victims / "final.txt")  # a link at a page's own name
        load_tasks(
            stub.db,
            {
                "id": skill,
                "name": "Docs into d6",
                "required_skills": ["documentation"],
                "payload": {"path": "shapes", "output": "docs/d6/"},
            },
        )
    finally:
        finish(worker)
    assert task_context(stub, skill)["task"]["status"] == "done"
    assert {p.name: p.read_text() for p in victims.iterdir()} == dict.fromkeys(
        ["index.md", "shapes.md", "final.txt"], "VICTIM\n"
    )
    assert (out / "index.md").read_text().startswith("# `shapes` API reference")
    assert not (out / "shapes.units.md").is_symlink()  # the link itself was replaced by the page
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".") and not p.is_symlink())
    assert leftovers == [".api-docs.json"]  # the manifest, and no temp file left behind


def test_output_folder_swapped_for_a_link_mid_task(tmp_path: Path) -> None:
    """After the first page lands, the output folder is moved aside and a link to a folder outside
    the workspace put in its place: the rest of the pages still go where the first one went."""
    ws = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", ws / "shapes")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    stub = start_stub(tmp_path / "board.db")
    proxy = HoldingProxy(stub.port, b"Writing pages: 1/6")
    try:
        load_tasks(
            stub.db,
            {
                "id": "swap",
                "name": "Docs",
                "required_skills": ["documentation"],
                "payload": {"path": "shapes", "output": "docs/api/"},
            },
        )
        worker = start_docs_worker(proxy.url, ws, tmp_path, "docs-swap")
        try:
            assert proxy.holding.wait(120), "the worker never reported its first page"
            assert sorted(p.name for p in (ws / "docs" / "api").glob("*.md")) == ["shapes.md"]
            (ws / "docs" / "api").rename(ws / "docs" / "moved-aside")
            (ws / "docs" / "api").symlink_to(outside)
            proxy.release()
        finally:
            finish(worker)
        assert task_context(stub, "swap")["task"]["status"] == "done"
        assert list(outside.iterdir()) == []
        aside = ws / "docs" / "moved-aside"
        assert len(list(aside.glob("*.md"))) == 7
        assert json.loads((aside / ".api-docs.json").read_text())["source"] == "shapes"
    finally:
        proxy.close()
        stub.stop()
