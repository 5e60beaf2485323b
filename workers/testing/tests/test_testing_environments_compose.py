"""Tests in the project's own environment under Docker Compose (marker `docker`, `make test-docker`).

The real images (built `FROM ${PYTHON_IMAGE}`), the stub and one testing worker, with a
folder of projects mounted as a user's project (`PROJECT_DIR`, the workers run as its
owner, uid 1000). The same kinds as the local suite (:mod:`env_projects`): a project with
its own `.venv` (made inside the image, so it runs there), one whose `.venv` was made on the
host (it does not run in a container: the worker says so and builds one), a pyproject
project whose test extra and group need packages the image does not have, a
requirements.txt project, `filterwarnings = error`, and installs that cannot succeed. The
containers reach PyPI the way a user's do: through the engine's bridge network and the
host's route out (here a TLS-inspecting egress proxy, trusted through the base image's CA
bundle, SSL_CERT_FILE). Then the worker's container is recreated: the environments are in
the `testing-envs` volume, so the next run reuses them. Compose project `<checkout>-envs-<id>`,
removed with its volumes at the end; its logs are kept in .run/e2e/.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import env_projects
import pytest
import yaml
from env_projects import MISSING_PACKAGE

from pm_agent_stub.testing import free_port
from tests.docker.conftest import engine_env  # noqa: F401 (the fixture)
from tests.docker.fleet import CHECKOUT, LOGS, ComposeFleet, fleet_env, run, unique_name, wait_for
from tests.helpers import open_scratch

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

OWNER = 1000  # the user whose project it is (we may be root here)
TAG = f"envs-{CHECKOUT}"
SETTLE = 900.0
PROBE_PYPI = (
    "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pytest/', timeout=20).read(100)"
)


@pytest.fixture(scope="module")
def fleet(engine_env: dict[str, str]) -> Iterator[dict[str, Any]]:  # noqa: F811
    if os.geteuid() != 0:
        pytest.skip("needs root to give the projects to another uid (as a host user's own files)")
    reason = env_projects.pypi_unreachable()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    with open_scratch("pm-envs-compose-") as scratch:
        kinds = scratch / "kinds"
        env_projects.make_projects(kinds)
        env_projects.requirements_project(kinds / "host-venv")
        from uv import find_uv_bin

        env_projects.make_venv(kinds / "host-venv", find_uv_bin())  # the host's interpreter: not in the image
        for path in [kinds, *kinds.rglob("*")]:
            os.lchown(path, OWNER, OWNER)
        port = free_port()
        env = fleet_env(engine_env, TAG, port) | {
            "PM_PROJECT_FILE": "",  # an empty board: only these tasks
            "PROJECT_DIR": str(kinds),
            "PROJECT_NAME": "kinds",
            "PM_UID": str(OWNER),
            "PM_GID": str(OWNER),
        }
        fleet = ComposeFleet(project=unique_name("envs"), env=env, port=port)
        LOGS.mkdir(parents=True, exist_ok=True)
        try:
            started = time.monotonic()
            fleet.compose("build", "pm-agent", "testing-worker", timeout=1500)
            fleet.compose(
                "up", "-d", "--wait", "--wait-timeout", "300", "pm-agent", "testing-worker", timeout=420
            )
            print(f"\nbuild + up: {time.monotonic() - started:.1f} s")
            [worker] = fleet.containers("testing-worker", running=True)
            probe = run(["docker", "exec", worker, "python", "-c", PROBE_PYPI], check=False)
            if probe.returncode != 0:
                why = f"the containers do not reach PyPI: {(probe.stdout + probe.stderr).strip()[-300:]}"
                print(f"SKIPPED: {why}")
                pytest.skip(why)
            # a .venv made inside the image (a dev container's, say): it runs there
            image = f"pm-agent-fleet/testing-worker:{TAG}"
            run(
                [
                    "docker", "run", "--rm", "-u", f"{OWNER}:{OWNER}", "-e", "UV_CACHE_DIR=/tmp/uv",
                    "-v", f"{kinds}:/workspace/kinds", image,
                    "sh", "-c",
                    "uv venv -q /workspace/kinds/own-venv/.venv && "
                    "uv pip install -q --python /workspace/kinds/own-venv/.venv/bin/python pytest tabulate",
                ],
                timeout=600,
            )  # fmt: skip
            yield {"fleet": fleet, "kinds": kinds, "worker": worker}
        finally:
            logs = fleet.compose("logs", "--no-color", timeout=120, check=False)
            (LOGS / f"{fleet.project}.log").write_text(logs.stdout + logs.stderr)
            fleet.compose("down", "-v", "--timeout", "30", timeout=300, check=False)


def load(fleet: ComposeFleet, tasks: list[dict[str, Any]], folder: Path) -> None:
    path = folder / f"tasks-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"project": "envs", "tasks": tasks}))
    out = fleet.load_board(path)
    assert f"loaded {len(tasks)} new task(s)" in out, out


def settle(fleet: ComposeFleet, ids: list[str]) -> dict[str, dict[str, Any]]:
    def ended() -> dict[str, dict[str, Any]] | None:
        contexts = {t: fleet.task(t) for t in ids}
        return (
            contexts if all(c["task"]["status"] in ("done", "blocked") for c in contexts.values()) else None
        )

    return wait_for(f"tasks {ids} to end", ended, timeout=SETTLE, interval=3.0)


@pytest.fixture(scope="module")
def first_run(fleet: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tasks = env_projects.tasks("kinds", "k")
    tasks.append(
        {
            "id": "k-host-venv",
            "name": "host venv",
            "required_skills": ["testing"],
            "payload": {"path": "kinds/host-venv"},
        }
    )
    load(fleet["fleet"], tasks, fleet["kinds"].parent)
    return settle(fleet["fleet"], [t["id"] for t in tasks])


def environment_of(context: dict[str, Any]) -> dict[str, Any]:
    assert context["task"]["status"] == "done", json.dumps(context["blockers"], indent=1)
    env: dict[str, Any] = context["artifacts"][0]["data"]["environment"]
    return env


def test_the_three_kinds_of_project_pass(first_run: dict[str, dict[str, Any]]) -> None:
    own = environment_of(first_run["k-own-venv"])
    assert (own["source"], own["venv"]) == ("venv", "kinds/own-venv/.venv")
    extra = environment_of(first_run["k-extra"])
    assert extra["sources"] == ["pyproject.toml [test]", "group test"]
    assert environment_of(first_run["k-reqs"])["sources"] == ["requirements.txt"]
    for name, passed in (("k-own-venv", 2), ("k-extra", 3), ("k-reqs", 3)):
        assert first_run[name]["artifacts"][0]["data"]["passed"] == passed, name
    # the reports are the user's, in their folder
    report = Path(first_run["k-extra"]["artifacts"][0]["location"].replace("kinds/", "", 1))
    assert report.parts[0] == "reports"


def test_filterwarnings_error_passes(first_run: dict[str, dict[str, Any]]) -> None:
    assert first_run["k-strict"]["artifacts"][0]["data"]["passed"] == 1
    environment_of(first_run["k-strict"])


def test_a_host_made_venv_is_replaced_by_a_built_environment(first_run: dict[str, dict[str, Any]]) -> None:
    context = first_run["k-host-venv"]
    env = environment_of(context)
    assert env["source"] == "built"
    messages = [e["message"] for e in context["progress_log"]]
    assert any(
        m.startswith("The project's kinds/host-venv/.venv does not run here (its interpreter ")
        for m in messages
    ), messages


def test_failed_installs_are_blockers_naming_the_package(first_run: dict[str, dict[str, Any]]) -> None:
    [missing] = first_run["k-bad-package"]["blockers"]
    assert f"package '{MISSING_PACKAGE}' was not found on the index" in missing["description"]
    assert "exists on the index" in missing["resolution_suggestion"]
    [version] = first_run["k-bad-version"]["blockers"]
    assert "no version six==0.0.999 exists on the index" in version["description"]


def test_environments_survive_the_container(
    fleet: dict[str, Any], first_run: dict[str, dict[str, Any]]
) -> None:
    """Cached in the run, and again after the worker's container is recreated (the named volume)."""
    compose: ComposeFleet = fleet["fleet"]
    first = environment_of(first_run["k-extra"])
    again = environment_of(first_run["k-extra-again"])
    assert (again["cached"], again["key"]) == (True, first["key"])
    compose.compose("up", "-d", "--wait", "--force-recreate", "--no-deps", "testing-worker", timeout=300)
    [worker] = compose.containers("testing-worker", running=True)
    assert worker != fleet["worker"]
    task = {
        "id": "k-after-restart",
        "name": "after",
        "required_skills": ["testing"],
        "payload": {"path": "kinds/extra"},
    }
    load(compose, [task], fleet["kinds"].parent)
    after = environment_of(settle(compose, ["k-after-restart"])["k-after-restart"])
    assert (after["cached"], after["key"]) == (True, first["key"])
    print(
        f"\nCompose, environment of `extra`: first build {first['seconds']:.2f} s, cached {again['seconds']:.2f} s, "
        f"after the container was recreated {after['seconds']:.2f} s"
    )
    volumes = run(
        ["docker", "volume", "ls", "-q", "--filter", f"name={compose.project}_testing-envs"]
    ).stdout.split()
    assert volumes == [f"{compose.project}_testing-envs"]
