"""Skill names and the `skills` label of /metrics against a real stub (issue 24, item 6).

    python -m tests.reliability.skill_labels [--tasks 20000] [--env PM_X=Y ...]

Starts a stub on a fresh board and prints, as JSON:

- `comma`: what `load` (the CLI, a project file) and `register_agent` (over HTTP) answer for the
  skill `testing,unit-testing`, and the `pm_agent_ready_tasks` series a scrape then shows for
  it next to a task requiring the two skills `testing` and `unit-testing`;
- `many`: after loading `--tasks` tasks with a distinct skill set each (64 skills of 100
  characters for the longest label), how many `pm_agent_ready_tasks` / `pm_agent_in_progress_tasks`
  series a scrape has, its size, its time, and the longest label value.

Only what every stub version serves is used, so running it with an older checkout's sources
first on PYTHONPATH gives the "before" figures; tests/reliability/test_skill_labels.py asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import yaml

from pm_agent_stub.testing import StubProcess, load_tasks, run_cli, start_stub
from tests.reliability.rpc import post, strict_json, tool_body

SKILL_FAMILIES = ("pm_agent_ready_tasks", "pm_agent_in_progress_tasks")


def skill_series(text: str) -> list[tuple[str, str]]:
    """(metric, skills label) of every skill-labelled sample, duplicates kept (a parser would drop them)."""
    found = []
    for line in text.splitlines():
        for family in SKILL_FAMILIES:
            if line.startswith(family + "{"):
                label = line[len(family) + 1 :].split('"')[1]
                found.append((family, label))
    return found


def measure_comma(stub: StubProcess, workdir: Path) -> dict[str, Any]:
    project = workdir / "comma.yaml"
    project.write_text(
        yaml.safe_dump(
            {
                "project": "p",
                "tasks": [
                    {"id": "one-skill", "name": "One", "required_skills": ["testing,unit-testing"]},
                    {"id": "two-skills", "name": "Two", "required_skills": ["testing", "unit-testing"]},
                ],
            }
        )
    )
    loaded = run_cli("load", str(project), "--url", stub.url)
    with httpx2.Client(timeout=60) as client:
        registered = post(
            client,
            stub.url,
            tool_body(
                "register_agent",
                {"agent_id": "w", "name": "W", "role": "r", "skills": ["testing,unit-testing"]},
            ),
        )
        answer = strict_json(strict_json(registered.text)["result"]["content"][0]["text"])
        scrape = client.get(f"{stub.base_url}/metrics").text
    return {
        "load_exit": loaded.returncode,
        "load_output": (loaded.stdout + loaded.stderr).strip()[-600:],
        "register_agent": answer,
        "ready_series": [label for family, label in skill_series(scrape) if family == "pm_agent_ready_tasks"],
    }


def measure_many(stub: StubProcess, tasks: int) -> dict[str, Any]:
    long_skills = [f"s{i:02d}-" + "x" * 96 for i in range(64)]
    batch = []
    for i in range(tasks):
        skills = long_skills if i == 0 else [f"set-{i}", "shared"]
        batch.append({"id": f"t{i}", "name": f"Task {i}", "required_skills": skills})
        if len(batch) == 5000:
            load_tasks(stub.db, *batch)
            batch = []
    if batch:
        load_tasks(stub.db, *batch)
    with httpx2.Client(timeout=300) as client:
        client.get(f"{stub.base_url}/metrics")  # warm
        started = time.perf_counter()
        scrape = client.get(f"{stub.base_url}/metrics").text
        took = time.perf_counter() - started
    series = skill_series(scrape)
    return {
        "tasks": tasks,
        "skill_series": len(series),
        "exposition_bytes": len(scrape.encode()),
        "scrape_seconds": round(took, 3),
        "longest_label_chars": max((len(label) for _f, label in series), default=0),
        "other_series": sum(1 for _f, label in series if label == "OTHER"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.skill_labels", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks with distinct skill sets (20000)")
    parser.add_argument("--env", action="append", default=[], help="PM_X=Y for the stub (repeatable)")
    ns = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in ns.env)
    result: dict[str, Any] = {"env": env}
    with tempfile.TemporaryDirectory() as tmp:
        stub = start_stub(Path(tmp) / "comma.db", env=env)
        try:
            result["comma"] = measure_comma(stub, Path(tmp))
        finally:
            stub.stop()
        stub = start_stub(Path(tmp) / "many.db", env=env)
        try:
            result["many"] = measure_many(stub, ns.tasks)
        finally:
            stub.stop()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
