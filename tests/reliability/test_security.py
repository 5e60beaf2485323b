"""Security of the stub and the workers, against real processes.

- With PM_AGENT_TOKEN set, `/mcp` without the right bearer token is 401 and changes nothing;
  the right token works; `/healthz` needs none; the comparison is `hmac.compare_digest`.
- The token appears in no log: not the stub's, not a worker's (also when it is wrong).
- Host header allow-list: `pm-agent:8000` accepted, `evil.example:8000` refused with 421.
- The testing worker runs `payload.command` as an argv list, never through a shell.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pm_agent_stub import http_app
from pm_agent_stub.testing import StubProcess, http_get_json, start_stub, tasks_yaml, wait_until
from tests.helpers import REPO_ROOT
from tests.reliability.boardcheck import dump, rows
from tests.reliability.rpc import HEADERS, strict_json, tool_answer, tool_body

TOKEN = "tok-" + secrets.token_urlsafe(24)
STEP_WORKER = REPO_ROOT / "examples" / "step_worker.py"
INJECTIONS = (
    'python -c "print(1)"; touch {p}',
    'python -c "print(1)" && touch {p}',
    'python -c "print(1)" || touch {p}',
    'python -c "print(1)" | touch {p}',
    'python -c "print(1)" $(touch {p})',
    'python -c "print(1)" `touch {p}`',
    'python -c "print(1)"\ntouch {p}',
    'python -c "print(1)" > {p}',
    'python -c "print(1)" & touch {p}',
)


@pytest.fixture(scope="module")
def pwned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pwned")


@pytest.fixture(scope="module")
def secure_stub(tmp_path_factory: pytest.TempPathFactory, pwned_dir: Path) -> Iterator[StubProcess]:
    root = tmp_path_factory.mktemp("secure")
    tasks: list[dict[str, Any]] = [
        {"id": "steps-1", "name": "Two steps", "required_skills": ["steps"], "payload": {"steps": 2}},
    ]
    for i, template in enumerate(INJECTIONS):
        target = pwned_dir / f"pwned-{i}-{secrets.token_hex(4)}"
        tasks.append(
            {
                "id": f"inject-{i}",
                "name": f"Injection {i}",
                "required_skills": ["testing"],
                "payload": {"path": ".", "command": template.format(p=target), "timeout_seconds": 60},
            }
        )
    project = root / "project.yaml"
    project.write_text(tasks_yaml(*tasks, project="secure"))
    stub = start_stub(root / "board.db", env={"PM_AGENT_TOKEN": TOKEN}, project=project, timeout=60)
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=httpx2.Timeout(15.0, connect=5.0)) as client:
        yield client


def _auth(value: str | None) -> dict[str, str]:
    return HEADERS if value is None else {**HEADERS, "authorization": value}


WRONG = {
    "no header": None,
    "wrong token": "Bearer not-the-token",
    "token plus a byte": f"Bearer {TOKEN}x",
    "token minus a byte": f"Bearer {TOKEN[:-1]}",
    "no scheme": TOKEN,
    "basic scheme": f"Basic {TOKEN}",
    "empty bearer": "Bearer",
    "two spaces": f"Bearer  {TOKEN}",
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_missing_or_wrong_token_is_401_and_changes_nothing(
    secure_stub: StubProcess, http: httpx2.Client, case: str
) -> None:
    before = dump(secure_stub.db)
    for path in ("/mcp", "/mcp/"):
        for name, args in (
            (
                "register_agent",
                {"agent_id": f"intruder-{case}", "name": "I", "role": "r", "skills": ["testing"]},
            ),
            ("resolve_blocker", {"task_id": "steps-1", "resolution": "x"}),
            ("ping", {}),
        ):
            response = http.post(
                secure_stub.base_url + path, headers=_auth(WRONG[case]), content=tool_body(name, args)
            )
            assert response.status_code == 401, (case, path, response.status_code, response.text[:200])
            assert response.headers["www-authenticate"].startswith("Bearer")
            error = strict_json(response.text)["error"]
            assert error["data"]["error"] == "unauthorized"
            assert "PM_AGENT_TOKEN" in error["message"]
    assert dump(secure_stub.db) == before


def test_two_authorization_headers_do_not_smuggle_a_token(secure_stub: StubProcess) -> None:
    import socket

    body = tool_body("ping", {})
    request = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nAuthorization: Bearer wrong\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with socket.create_connection(("127.0.0.1", secure_stub.port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


def test_right_token_works(secure_stub: StubProcess, http: httpx2.Client) -> None:
    answer = tool_answer(
        http.post(
            secure_stub.url,
            headers=_auth(f"Bearer {TOKEN}"),
            content=tool_body(
                "register_agent", {"agent_id": "auth-ok", "name": "A", "role": "r", "skills": []}
            ),
        )
    )
    assert answer["success"] is True
    assert rows(secure_stub.db, "SELECT agent_id FROM agents WHERE agent_id = 'auth-ok'")


def test_healthz_needs_no_token(secure_stub: StubProcess) -> None:
    status, body = http_get_json(f"{secure_stub.base_url}/healthz")
    assert status == 200, body
    assert body["status"] == "ok"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("pm-agent:8000", 200),
        ("pm-agent", 200),
        ("localhost:8000", 200),
        ("evil.example:8000", 421),
        ("evil.example", 421),
        ("pm-agent.evil.example:8000", 421),
        ("evil.example:8000.pm-agent", 421),
    ],
)
def test_host_header_allow_list(
    secure_stub: StubProcess, http: httpx2.Client, host: str, status: int
) -> None:
    response = http.post(
        secure_stub.url, headers={**_auth(f"Bearer {TOKEN}"), "host": host}, content=tool_body("ping", {})
    )
    assert response.status_code == status, (host, response.text[:200])


def test_foreign_origin_is_refused(secure_stub: StubProcess, http: httpx2.Client) -> None:
    headers = {**_auth(f"Bearer {TOKEN}"), "origin": "http://evil.example"}
    response = http.post(secure_stub.url, headers=headers, content=tool_body("ping", {}))
    assert 400 <= response.status_code < 500, response.status_code


async def test_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The middleware decides with hmac.compare_digest (a spy sees every decision), never with ==."""
    seen: list[tuple[bytes, bytes]] = []
    real = http_app.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(http_app.hmac, "compare_digest", spy)
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    middleware = http_app.BearerTokenMiddleware(inner, "sekrit")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"type": "http.request", "body": b"", "more_body": False}

    for header in (b"Bearer sekrit", b"Bearer sekrix", b""):
        scope = {"type": "http", "path": "/mcp", "headers": [(b"authorization", header)] if header else []}
        await middleware(scope, receive, send)
    assert seen == [
        (b"Bearer sekrit", b"Bearer sekrit"),
        (b"Bearer sekrix", b"Bearer sekrit"),
        (b"", b"Bearer sekrit"),
    ]
    assert reached == ["/mcp"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [401, 401]


def _worker(
    script: list[str], stub: StubProcess, log: Path, workspace: Path, **env: str
) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "LOG_", "AGENT_"))}
    full.update(
        PM_AGENT_URL=stub.url,
        WORKSPACE=str(workspace),
        HEARTBEAT_SECONDS="1",
        POLL_WAIT_SECONDS="1",
        RECONNECT_GIVE_UP_SECONDS="30",
        LOG_FORMAT="json",
        LOG_LEVEL="debug",
        HEALTH_DIR=str(workspace / ".health"),
        PYTHONUNBUFFERED="1",
        **env,
    )
    with log.open("wb") as out:
        return subprocess.Popen(script, stdout=out, stderr=subprocess.STDOUT, env=full, cwd=REPO_ROOT)


def test_workers_never_log_the_token(secure_stub: StubProcess, tmp_path: Path) -> None:
    """A worker with the right token does its task; one with a wrong token stops; neither logs it."""
    wrong = TOKEN + "-wrong"
    good_log, bad_log = tmp_path / "good.log", tmp_path / "bad.log"
    good = _worker(
        [sys.executable, str(STEP_WORKER)],
        secure_stub,
        good_log,
        tmp_path,
        PM_AGENT_TOKEN=TOKEN,
        AGENT_ID="token-good",
        MAX_TASKS="1",
    )
    bad = _worker(
        [sys.executable, str(STEP_WORKER)],
        secure_stub,
        bad_log,
        tmp_path,
        PM_AGENT_TOKEN=wrong,
        AGENT_ID="token-bad",
    )
    try:
        assert good.wait(timeout=90) == 0, good_log.read_text()
        assert bad.wait(timeout=90) == 1, bad_log.read_text()
    finally:
        for proc in (good, bad):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rows(secure_stub.db, "SELECT completed_by FROM tasks WHERE task_id = 'steps-1'") == [
        {"completed_by": "token-good"}
    ]
    good_text, bad_text = good_log.read_text(), bad_log.read_text()
    assert '"task_completed"' in good_text
    assert "PM_AGENT_TOKEN" in bad_text  # it says what to fix...
    for text in (good_text, bad_text):
        assert TOKEN not in text  # ...and never what the token is
        assert TOKEN[4:] not in text
    # A bad setting next to the token: the one-line settings error must not echo it either.
    result = subprocess.run(
        [sys.executable, str(STEP_WORKER)],
        env={**os.environ, "PM_AGENT_TOKEN": TOKEN, "HEARTBEAT_SECONDS": "soon", "PM_AGENT_URL": "ftp://x"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_testing_worker_never_runs_task_text_as_a_shell(
    secure_stub: StubProcess, pwned_dir: Path, tmp_path: Path
) -> None:
    """Shell metacharacters in payload.command stay arguments: none of the `touch` files appears."""
    injected = [f"inject-{i}" for i in range(len(INJECTIONS))]
    log = tmp_path / "testing.log"
    worker = _worker(
        [sys.executable, "-m", "testing_worker"],
        secure_stub,
        log,
        tmp_path,
        PM_AGENT_TOKEN=TOKEN,
        AGENT_ID="shell-test",
        MAX_TASKS=str(len(injected)),
    )
    try:
        marks = ",".join("?" * len(injected))

        def finished() -> bool:
            found = rows(
                secure_stub.db, f"SELECT status FROM tasks WHERE task_id IN ({marks})", tuple(injected)
            )
            return all(r["status"] in ("done", "blocked") for r in found)

        wait_until(finished, timeout=150, interval=0.2, message="the injection tasks to finish")
        assert worker.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert sorted(p.name for p in pwned_dir.iterdir()) == [], log.read_text()[-3000:]
    # They ran: `python -c "print(1);" ...` exits 0 (done), the rest print and exit 0 or fail (blocked).
    ran = rows(
        secure_stub.db,
        f"SELECT task_id, message FROM progress_log WHERE status = 'completed' AND task_id IN ({marks})",
        tuple(injected),
    )
    assert "inject-0" in {r["task_id"] for r in ran}, ran
    assert all("exit code 0" in r["message"] for r in ran), ran
    # The control: the very same text through a shell does create the file.
    control = tmp_path / "control-pwned"
    subprocess.run(
        ["sh", "-c", INJECTIONS[0].format(p=control).replace("python", sys.executable, 1)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert control.exists()


def test_stub_never_logs_the_token(secure_stub: StubProcess) -> None:
    """Last: after 401s, wrong tokens (some containing the real one) and working workers."""
    logs = secure_stub.logs()
    assert '"unauthorized"' in logs  # the refusals were logged...
    assert TOKEN not in logs  # ...without the token
    assert TOKEN[4:] not in logs
