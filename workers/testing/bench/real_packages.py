"""Three real PyPI packages, their tests run CI-style by hand and by the fleet, side by side.

    .venv/bin/python workers/testing/bench/real_packages.py [--compose] [--work DIR] [--only NAME ...]

For each package (its sdist, which carries its tests):

- CI-style: ``python -m venv``, ``pip install -U pip``, the project's own install line
  (``pip install -e . --group tests`` for attrs, ``-e '.[tests]'`` for humanize,
  ``-r requirements-dev.txt`` for requests), ``python -m pytest``; pip without a cache, as on
  a fresh CI runner, and without this machine's pip configuration (PIP_CONFIG_FILE=/dev/null).
- The fleet, locally: the real stub and testing worker processes, a fresh environment cache;
  two tasks per package with the default payload (``python -m pytest -q``): the first builds
  the project's environment from its metadata, the second reuses it.
- With ``--compose``: the CI-style run again inside a container of ``PYTHON_IMAGE`` (the
  fleet's base image), and the same two tasks in the fleet's images under Compose (pm-agent
  and testing-worker; the sdists mounted as the project, owned by uid 1000 as a user's
  folder; a fresh ``testing-envs`` volume).

Prints the counts (passed/failed/skipped/errors) and the times: environment build (first,
cached) and test run. Figures taken on a shared machine are busy-machine figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from pm_agent_stub.testing import free_port, load_tasks, start_stub, task_context  # noqa: E402
from testing_worker.junit import parse_junit  # noqa: E402
from tests.integration.workerproc import run_worker_to_end  # noqa: E402


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    ci_install: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PACKAGES = (
    Package("attrs", "26.1.0", ("-e", ".", "--group", "tests")),  # PEP 735 group `tests`
    Package("humanize", "4.17.0", ("-e", ".[tests]")),  # extra `tests`
    Package("requests", "2.34.2", ("-r", "requirements-dev.txt")),  # requirements-dev.txt (with -e .[socks])
)
TASK_SECONDS = 1800
SKILLS = "testing,pytest,unit-testing,integration-testing"
OWNER = 1000  # under Compose the project is this uid's, as a user's folder is


def say(message: str) -> None:
    print(f"[real-packages {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def clean_pip_env() -> dict[str, str]:
    """pip as on a fresh machine: no config files, no PIP_* of this one (its wheel folder, constraints)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if "SSL_CERT_FILE" in os.environ:  # this machine's TLS trust (its egress proxy), as pip's own setting
        env["PIP_CERT"] = os.environ["SSL_CERT_FILE"]
    return env


def download(packages: tuple[Package, ...], into: Path, python: str) -> dict[str, Path]:
    """The sdists, with pip download (the fleet's own venv has no pip; the base interpreter's does)."""
    into.mkdir(parents=True, exist_ok=True)
    found = {}
    for pkg in packages:
        subprocess.run(
            [python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(into),
             f"{pkg.name}=={pkg.version}"],
            check=True, env=clean_pip_env(), timeout=600,
        )  # fmt: skip
        [sdist] = into.glob(f"{pkg.name}-{pkg.version}.tar.gz")
        found[pkg.name] = sdist
    return found


def extract(sdist: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(into, filter="data")
    return into / sdist.name.removesuffix(".tar.gz")


def counts(report: Path) -> dict[str, int]:
    parsed = parse_junit(report.read_bytes(), report.parent)
    return {
        k: v for k, v in parsed.counts().items() if k in ("passed", "failed", "skipped", "errors", "total")
    }


def base_python() -> str:
    """The interpreter the fleet's environments get by default here (what `uv python find --system` says)."""
    from uv import find_uv_bin

    return subprocess.run(
        [find_uv_bin(), "python", "find", "--system"], capture_output=True, text=True, check=True
    ).stdout.strip()


def ci_style(pkg: Package, project: Path, python: str) -> dict[str, Any]:
    venv = project.parent / f"venv-{pkg.name}"
    env = clean_pip_env()
    started = time.monotonic()
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    subprocess.run([*pip, "-U", "pip"], check=True, cwd=project, env=env, timeout=900)
    subprocess.run([*pip, *pkg.ci_install], check=True, cwd=project, env=env, timeout=1800)
    install = time.monotonic() - started
    report = project / "ci-report.xml"
    started = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=project, env={**env, "VIRTUAL_ENV": str(venv)}, capture_output=True, timeout=TASK_SECONDS, check=False,
    )  # fmt: skip
    return {"install_seconds": install, "test_seconds": time.monotonic() - started, **counts(report)}


def ci_style_container(pkg: Package, project: Path, image: str) -> dict[str, Any]:
    """The same by hand in a container of the fleet's base image (``PYTHON_IMAGE``), the project mounted."""
    install = " ".join(f"'{a}'" for a in pkg.ci_install)
    script = (
        "set -e; t0=$(date +%s.%N); python3 -m venv /tmp/v; "
        "/tmp/v/bin/python -m pip install -q --no-cache-dir -U pip; "
        f"/tmp/v/bin/python -m pip install -q --no-cache-dir {install}; t1=$(date +%s.%N); "
        "/tmp/v/bin/python -m pytest -q -p no:cacheprovider --junitxml=/p/ci-report.xml >/dev/null || true; "
        "t2=$(date +%s.%N); echo TIMES $t0 $t1 $t2"
    )
    done = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{project}:/p", "-w", "/p", "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1",
         image, "sh", "-c", script],
        capture_output=True, text=True, timeout=2 * TASK_SECONDS, check=False,
    )  # fmt: skip
    times = [line for line in done.stdout.splitlines() if line.startswith("TIMES ")]
    if not times:
        raise SystemExit(
            f"the CI-style run of {pkg.name} in {image} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    t0, t1, t2 = map(float, times[-1].split()[1:])
    return {"install_seconds": t1 - t0, "test_seconds": t2 - t1, **counts(project / "ci-report.xml")}


def fleet_tasks(
    prefix: str, packages: tuple[Package, ...], skill: str, suffix: str = ""
) -> list[dict[str, Any]]:
    """One task per package with the default payload; ``suffix`` names the second round's."""
    return [
        {
            "id": f"{pkg.name}{suffix}",
            "name": f"{pkg.name}{suffix}",
            "required_skills": [skill],
            "payload": {"path": f"{prefix}{pkg.folder}", "timeout_seconds": TASK_SECONDS},
        }
        for pkg in packages
    ]


def fleet_result(contexts: dict[str, dict[str, Any]], pkg: Package) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suffix, label in (("", "first"), ("-again", "cached")):
        context = contexts[pkg.name + suffix]
        if not context["artifacts"]:  # blocked before any test ran
            out[label] = {"blocked": [b["description"][:300] for b in context["blockers"]]}
            continue
        data = context["artifacts"][0]["data"]
        env = data["environment"]
        out[label] = {
            "env_seconds": env.get("seconds"),
            "cached": env.get("cached"),
            "test_seconds": data["duration_seconds"],
            **{k: data[k] for k in ("passed", "failed", "skipped", "errors", "total")},
        }
    return out


def fleet_local(packages: tuple[Package, ...], workspace: Path) -> dict[str, Any]:
    """Two rounds, a worker process each: the first builds every environment, the second reuses them
    (a round per worker run: a task whose tests fail ends blocked, so nothing may wait on it)."""
    stub = start_stub(workspace.parent / "board.db")
    contexts: dict[str, dict[str, Any]] = {}
    try:
        for suffix in ("", "-again"):
            tasks = fleet_tasks("", packages, "real-packages", suffix)
            load_tasks(stub.db, *tasks)
            code, log = run_worker_to_end(
                "testing_worker", stub, workspace, agent_id="real-packages", skills=f"{SKILLS},real-packages",
                max_tasks=len(tasks), timeout=TASK_SECONDS * len(tasks),
                TESTING_ENV_CACHE=str(workspace.parent / "fleet-cache"),
            )  # fmt: skip
            if code != 0:
                raise SystemExit(f"the worker exited {code}:\n{log[-3000:]}")
            contexts |= {t["id"]: task_context(stub, t["id"]) for t in tasks}
    finally:
        stub.stop()
    return {pkg.name: fleet_result(contexts, pkg) for pkg in packages}


def fleet_compose(packages: tuple[Package, ...], project: Path) -> dict[str, Any]:
    from tests.docker.fleet import CHECKOUT, ComposeFleet, fleet_env, unique_name, wait_for

    port = free_port()
    engine = {"PYTHON_IMAGE": os.environ.get("PYTHON_IMAGE", "python:3.12-slim")}
    env = fleet_env(engine, f"envs-{CHECKOUT}", port) | {
        "PM_PROJECT_FILE": "",
        "PROJECT_DIR": str(project),
        "PROJECT_NAME": project.name,
        # the owner of the project, not root: a worker started as root drops to 10001 (the image's
        # entry point), which may not write a root-owned project
        "PM_UID": str(OWNER),
        "PM_GID": str(OWNER),
    }
    if os.geteuid() == 0:
        for path in [project, *project.rglob("*")]:
            os.lchown(path, OWNER, OWNER)
    fleet = ComposeFleet(project=unique_name("realpkgs"), env=env, port=port)
    contexts: dict[str, dict[str, Any]] = {}
    try:
        fleet.compose("build", "pm-agent", "testing-worker", timeout=1500)
        fleet.compose("up", "-d", "--wait", "pm-agent", "testing-worker", timeout=420)
        for suffix in ("", "-again"):
            tasks = fleet_tasks(f"{project.name}/", packages, "testing", suffix)
            board = project.parent / f"tasks{suffix}.yaml"
            board.write_text(json.dumps({"project": "real-packages", "tasks": tasks}))
            fleet.load_board(board)

            def ended(tasks: list[dict[str, Any]] = tasks) -> dict[str, dict[str, Any]] | None:
                found = {t["id"]: fleet.task(t["id"]) for t in tasks}
                return (
                    found if all(c["task"]["status"] in ("done", "blocked") for c in found.values()) else None
                )

            contexts |= wait_for("the packages' tasks", ended, timeout=TASK_SECONDS * len(tasks), interval=5)
    finally:
        fleet.compose("down", "-v", "--timeout", "30", timeout=300, check=False)
    return {pkg.name: fleet_result(contexts, pkg) for pkg in packages}


def row(label: str, r: dict[str, Any]) -> str:
    if "blocked" in r:
        return f"  {label:<19} BLOCKED: {r['blocked']}"
    c = f"{r['passed']}/{r['failed']}/{r['skipped']}/{r['errors']}"
    env = r.get("env_seconds", r.get("install_seconds"))
    return f"  {label:<19} {c:<18} env {env:7.1f} s   tests {r['test_seconds']:7.1f} s"


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally`s run: the stub and fleet are stopped
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", action="store_true", help="also run the fleet under Docker Compose")
    parser.add_argument("--no-ci", action="store_true", help="skip the CI-style runs")
    parser.add_argument("--no-local", action="store_true", help="skip the fleet's local run")
    parser.add_argument(
        "--work", type=Path, help="work folder (default: a fresh temporary one, removed after)"
    )
    parser.add_argument("--only", nargs="*", default=[p.name for p in PACKAGES])
    args = parser.parse_args()
    packages = tuple(p for p in PACKAGES if p.name in args.only)
    work = args.work or Path(tempfile.mkdtemp(prefix="pm-real-packages-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    results: dict[str, Any] = {}
    try:
        python = base_python()
        sdists = download(packages, work / "sdist", python)
        say(f"CI-style runs with {python}")
        if not args.no_ci:
            results["ci"] = {}
            for pkg in packages:
                results["ci"][pkg.name] = ci_style(pkg, extract(sdists[pkg.name], work / "ci"), python)
                say(f"CI-style {pkg.name}: {results['ci'][pkg.name]}")
        if not args.no_local:
            for pkg in packages:
                extract(sdists[pkg.name], work / "fleet" / "workspace")
            say("the fleet, local processes")
            results["local"] = fleet_local(packages, work / "fleet" / "workspace")
        if args.compose:
            image = os.environ.get("PYTHON_IMAGE", "python:3.12-slim")
            results["ci-container"] = {}
            for pkg in packages:
                results["ci-container"][pkg.name] = ci_style_container(
                    pkg, extract(sdists[pkg.name], work / "ci-container"), image
                )
                say(f"CI-style in {image} {pkg.name}: {results['ci-container'][pkg.name]}")
            for pkg in packages:
                extract(sdists[pkg.name], work / "compose" / "real")
            say("the fleet under Compose")
            results["compose"] = fleet_compose(packages, work / "compose" / "real")
    finally:
        (work / "results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
    print("\npassed/failed/skipped/errors; env = venv + install (CI-style), environment build (fleet)")
    for pkg in packages:
        print(f"{pkg.name} {pkg.version}")
        if "ci" in results:
            print(row("CI-style", results["ci"][pkg.name]))
        if "ci-container" in results:
            print(row("CI-style container", results["ci-container"][pkg.name]))
        for where in ("local", "compose"):
            if where in results:
                print(row(f"fleet {where}", results[where][pkg.name]["first"]))
                print(row(f"fleet {where} again", results[where][pkg.name]["cached"]))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
