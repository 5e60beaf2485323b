"""`python -m devops_worker.swarm`: the compose file reshaped so `docker stack deploy` takes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devops_worker.swarm import to_swarm

REPO = Path(__file__).resolve().parents[3]


def test_reshapes_what_swarm_refuses() -> None:
    config = {
        "name": "fleet",
        "services": {
            "pm-agent": {
                "image": "a",
                "build": {"context": "."},
                "pull_policy": "build",
                "command": None,
                "restart": "unless-stopped",
                "deploy": {"replicas": 1},
                "ports": [{"target": 8000, "published": "8000", "host_ip": "127.0.0.1", "protocol": "tcp"}],
                "volumes": [{"type": "volume", "source": "data", "target": "/data", "volume": {}}],
            },
            "devops-worker": {
                "image": "b",
                "user": "0:0",
                "depends_on": {"pm-agent": {"condition": "service_healthy", "required": True}},
            },
        },
        "volumes": {"data": {"name": "fleet_data"}},
    }
    out = to_swarm(config)
    assert "name" not in out
    stub, devops = out["services"]["pm-agent"], out["services"]["devops-worker"]
    for key in ("build", "pull_policy", "restart", "command"):
        assert key not in stub, key
    assert stub["ports"] == [{"target": 8000, "published": 8000, "protocol": "tcp", "mode": "host"}]
    assert stub["volumes"] == [{"type": "volume", "source": "data", "target": "/data"}]
    assert devops["depends_on"] == ["pm-agent"]
    assert devops["user"] == "0:0", "the entry point needs root to join the socket's group"
    assert out["volumes"] == {"data": {}}
    assert config["services"]["pm-agent"]["ports"][0]["host_ip"] == "127.0.0.1", "the input is not changed"


def test_every_service_resolves_by_dns_round_robin_not_a_virtual_ip() -> None:
    """A VIP needs IPVS in the kernel; without it `pm-agent` resolves and never answers."""
    out = to_swarm(
        {"services": {"pm-agent": {"image": "a", "deploy": {"replicas": 1}}, "worker": {"image": "b"}}}
    )
    assert out["services"]["pm-agent"]["deploy"] == {"replicas": 1, "endpoint_mode": "dnsrr"}
    assert out["services"]["worker"]["deploy"] == {"endpoint_mode": "dnsrr"}


def test_docker_stack_accepts_the_reshaped_compose_file(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    compose = subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if compose.returncode != 0:
        pytest.skip(f"docker compose is not available: {compose.stderr.strip()[:200]}")
    swarm = subprocess.run(
        [sys.executable, "-m", "devops_worker.swarm"],
        input=compose.stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    stack_file = tmp_path / "stack.yml"
    stack_file.write_text(swarm.stdout)
    checked = subprocess.run(
        ["docker", "stack", "config", "-c", str(stack_file)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0 and "unknown command" in checked.stderr:
        pytest.skip("this docker CLI has no `docker stack config`")
    assert checked.returncode == 0, checked.stderr
    assert "Ignoring unsupported options" not in checked.stderr, checked.stderr
    services = json.loads(swarm.stdout)["services"]
    assert set(services) >= {"pm-agent", "documentation-worker", "testing-worker", "devops-worker"}
    [port] = services["pm-agent"]["ports"]
    assert port["mode"] == "host", "ingress publishing cannot be combined with dnsrr"


def test_refuses_input_that_is_not_a_compose_config() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "devops_worker.swarm"],
        input="services: [",
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "docker compose config --format json" in bad.stderr
