"""Run the real PM Agent stub as a subprocess and talk to it, for any test suite.

A public test kit (like `httpx.MockTransport`, it ships inside the package): our suites,
bench/ and a user's own worker tests import it the same way.

    from pm_agent_stub.testing import start_stub, call_tool

    stub = start_stub(tmp_path / "board.db", env={"PM_LEASE_SECONDS": "1"})
    try:
        async with mcp.Client(stub.url) as client:
            answer = await call_tool(client, "ping", {})
    finally:
        stub.stop()

Everything waits by polling with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_protocol import Send, call, tools
from pm_protocol.errors import refusal


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a stub subprocess gets: ours, JSON logs, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "LOG_"))}
    env["LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """What every MCP server a test starts as a subprocess on 127.0.0.1 has: its URL, logs,
    liveness, kill, stop.

    Mixed into `StubProcess` here and into other servers' handles (the Marcus test host),
    which declare `proc`, `port` and `log_path` as fields.
    """

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The MCP endpoint, exactly `/mcp`."""
        return f"{self.base_url}/mcp"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (for crash tests)."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if it does not go; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


@dataclass
class StubProcess(ServerProcess):
    """A running `python -m pm_agent_stub serve` on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    db: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)


def http_get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET a URL; (status, parsed JSON or text). Connection errors raise OSError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode()
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        status = exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def wait_healthy(stub: StubProcess, timeout: float = 30.0) -> dict[str, Any]:
    """Poll `/healthz` until 200; fail with the stub's log if it dies or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not stub.alive():
            raise RuntimeError(f"stub exited with {stub.proc.returncode}:\n{stub.logs()}")
        try:
            status, body = http_get_json(f"{stub.base_url}/healthz", timeout=1.0)
            if status == 200 and isinstance(body, dict):
                return body
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"stub not healthy after {timeout}s:\n{stub.logs()}")


def start_stub(
    db: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    project: Path | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 30.0,
    wrap: tuple[str, ...] = (),
) -> StubProcess:
    """Start `python -m pm_agent_stub serve --port P --db DB` and wait until `/healthz` answers.

    `wrap` goes between the interpreter and `-m pm_agent_stub` (e.g. a profiler's
    `("-m", "pyinstrument", ...)`, as bench/profile.py does).
    """
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    log_path = db.with_name(f"{db.stem}-stub-{time.monotonic_ns()}.log")
    for attempt in range(3):
        chosen = port or free_port()
        cmd = [
            sys.executable,
            *wrap,
            "-m",
            "pm_agent_stub",
            "serve",
            "--port",
            str(chosen),
            "--db",
            str(db),
            *args,
        ]
        if project is not None:
            cmd += ["--project", str(project)]
        full_env = stub_env(env)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        stub = StubProcess(proc=proc, port=chosen, db=db, log_path=log_path, env=full_env)
        try:
            wait_healthy(stub, timeout)
            return stub
        except RuntimeError:
            # Lost a race for the port: try another one (only when we picked it).
            if port is not None or attempt == 2 or "address already in use" not in stub.logs().lower():
                raise
        except BaseException:
            stub.stop()
            raise
    raise AssertionError("unreachable")


def parse_result(result: Any) -> dict[str, Any]:
    """The JSON object of a tool result; asserts the protocol's shape (docs/protocol.md, "Results
    and errors"): a success is the same object as text and as structured content, an error
    (`is_error`) is text only."""
    text = result.content[0].text
    obj = json.loads(text)
    assert isinstance(obj, dict), text
    assert bool(result.is_error) == (obj.get("success") is False), text
    if result.is_error:
        assert result.structured_content is None, result.structured_content
    else:
        assert result.structured_content == obj, (result.structured_content, obj)
    return obj


async def call_tool(client: Any, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool on an `mcp.Client`/`ClientSession` and return its JSON object (errors included)."""
    return parse_result(await client.call_tool(name, arguments or {}))


def sender(client: Any) -> Send:
    """The `send` of `pm_protocol.call` over an `mcp.Client`: an error answer raises `Refused`.

    context = await call(sender(client), tools.get_task_context, {"task_id": "build"})
    """

    async def send(tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0) -> dict[str, Any]:
        result = await client.call_tool(tool, arguments)
        answer = parse_result(result)
        if result.is_error:
            raise refusal(tool, answer)
        return answer

    return send


def task_context(stub: StubProcess, task_id: str) -> dict[str, Any]:
    """`get_task_context` over MCP like any client, each artifact's data fetched whole.

    Lists carry an artifact's data inline only while it is small (`data_included`); a test
    that reads a big report gets it here with `get_artifact`, as a worker would.
    """
    import anyio
    import mcp

    async def fetch() -> dict[str, Any]:
        async with mcp.Client(stub.url) as client:
            send = sender(client)
            context = (await call(send, tools.get_task_context, {"task_id": task_id})).wire()
            for artifact in context["artifacts"]:
                if not artifact.get("data_included", True):
                    whole = await call(send, tools.get_artifact, {"artifact_id": artifact["artifact_id"]})
                    artifact["data"] = whole.artifact.data
            return context

    result: dict[str, Any] = anyio.run(fetch)
    return result


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m pm_agent_stub ARGS...` to completion; stdout/stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "pm_agent_stub", *args],
        capture_output=True,
        text=True,
        env=stub_env(env),
        timeout=timeout,
        check=False,
    )


def read_events(db: Path, kind: str | None = None, task_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of the board's event log (assigned/renewed/completed/expired/released/fenced/blocked/...)."""
    conn = sqlite3.connect(str(db), timeout=15)
    conn.row_factory = sqlite3.Row
    try:
        sql = "SELECT * FROM events WHERE 1 = 1"
        params: list[Any] = []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if task_id is not None:
            sql += " AND task_id = ?"
            params.append(task_id)
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
    finally:
        conn.close()


def wait_until(
    predicate: Any, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"
) -> Any:
    """Poll `predicate()` until truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout}s")
        time.sleep(interval)


def tasks_yaml(*tasks: dict[str, Any], project: str = "test") -> str:
    """A project file's text from task dicts."""
    import yaml

    return yaml.safe_dump({"project": project, "tasks": list(tasks)}, sort_keys=False)


def load_tasks(db: Path, *tasks: dict[str, Any]) -> dict[str, Any]:
    """Put tasks on a board file directly (what `load` does, minus the subprocess); safe while a stub runs."""
    from dataclasses import asdict

    from pm_agent_stub.board import Board
    from pm_agent_stub.db import connect
    from pm_agent_stub.project_file import check_project

    spec = check_project({"project": "test", "tasks": list(tasks)}, "test.yaml")
    board = Board(connect(db))
    try:
        return asdict(board.load_project(spec, "test.yaml"))
    finally:
        board.close()


def task(task_id: str, skill: str, **fields: Any) -> dict[str, Any]:
    """A task dict requiring `skill` (name defaults to "Task <id>")."""
    return {
        "id": task_id,
        "name": fields.pop("name", f"Task {task_id}"),
        "required_skills": [skill],
        **fields,
    }
