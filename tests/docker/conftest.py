"""The Docker end-to-end suites (`make test-docker`: Compose, marker `docker`; `make test-swarm`:
Swarm, marker `swarm`): the engine, and the timings.

The engine: if none answers, `../shared/docker/ensure-engine.sh` (next to the repo)
brings one up and names the local base image (PYTHON_IMAGE); if that fails too, the tests
are skipped with the reason (CI prints a loud SKIPPED line for it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.docker.fleet import REPO, SIZES, TIMINGS

ENSURE_ENGINE = REPO.parent / "shared" / "docker" / "ensure-engine.sh"


def _engine_answers() -> bool:
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def engine_env() -> dict[str, str]:
    """The environment compose runs with: PYTHON_IMAGE (a local base image)."""
    if shutil.which("docker") is None and not ENSURE_ENGINE.exists():
        pytest.skip("no docker CLI and no ../shared/docker/ensure-engine.sh to install one")
    env: dict[str, Any] = {}
    if ENSURE_ENGINE.exists():
        # Idempotent: starts the engine if needed and makes sure the base image exists.
        proc = subprocess.run(
            ["bash", str(ENSURE_ENGINE)], capture_output=True, text=True, timeout=900, check=False
        )
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            pytest.skip(f"the Docker engine could not be brought up by {ENSURE_ENGINE}: {tail}")
        for line in proc.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line.removeprefix("export ").partition("=")
                env[key.strip()] = value.strip().strip("'\"")
    if not _engine_answers():
        pytest.skip("no Docker engine answers (`docker info` fails) and ensure-engine.sh could not start one")
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("Docker Compose v2 (`docker compose`) is not installed")
    env.setdefault("PYTHON_IMAGE", os.environ.get("PYTHON_IMAGE") or "python:3.12-slim")
    return {str(k): str(v) for k, v in env.items()}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("docker e2e timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"  {name:<48} {seconds:8.1f} s")
    if SIZES:
        terminalreporter.section("image sizes")
        for image, (size, over) in SIZES.items():
            terminalreporter.write_line(
                f"  {image:<48} {size / 1e6:7.1f} MB  (+{over / 1e6:.1f} MB over the base)"
            )
