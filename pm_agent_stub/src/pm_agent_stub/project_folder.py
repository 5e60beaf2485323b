"""A task that names no folder runs in its project's folder, not at the top of the workspace.

Payload paths are relative to the workspace, which holds the project as one folder among
others: locally (`make demo PROJECT_DIR=~/src/shop`) the workspace is `~/src`, under Compose
`/workspace` with the project mounted at `/workspace/shop`. A test task without `path` ran in
the workspace's top: pytest collected the sibling projects and wrote `reports/`,
`.pytest_cache` and `.hypothesis` outside the project. So when a project file is loaded
(`load FILE`, `make load`, `make demo`, `make up PROJECT_FILE=...`), each task whose workers
read a folder from the payload (`path` for documentation and testing, `context` for devops:
the keys of `pm_protocol.roles`) and that gives none gets the project's folder, and the load
says so in a warning naming the task, the folder and how to choose another.

The project's folder is the folder holding the file (`~/src/shop/fleet.yaml` -> `shop`), as
in the README's layout, unless the loader is told (`load --default-path`, which `make demo`
and `make up` set from PROJECT_DIR). `--default-path .` keeps the workspace's top. A task
whose skills more than one kind of worker has (or none) is left as it is: the folder key
would depend on who takes it, and the load already warns about such a task.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pm_agent_stub.project_file import ProjectSpec, TaskSpec, parse_project
from pm_protocol.roles import ROLES

FOLDER_KEYS = ("path", "context")


def folder_key(required_skills: Sequence[str]) -> str | None:
    """The payload key naming the folder a task works in, for every kind of worker that may take it."""
    need = {s.lower() for s in required_skills}
    if not need:
        return None
    able = [role for role in ROLES if need <= role.skills and role.payload_keys is not None]
    keys = {next((k for k in FOLDER_KEYS if k in (role.payload_keys or ())), None) for role in able}
    return keys.pop() if len(keys) == 1 else None


def default_folder_note(key: str, folder: str, source: str) -> str:
    return (
        f"no payload {key}: it runs in '{folder}' ({source}), not the top of the workspace; "
        f"give `{key}:` to choose another folder"
    )


def with_project_folder(
    spec: ProjectSpec, folder: str, source: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """The project file as JSON text (YAML reads it) with `folder` filled in where a task names
    none, and a (task id, warning) for each such task; (None, []) when no task needs it."""
    notes: list[tuple[str, str]] = []
    tasks: list[dict[str, object]] = []
    for task in spec.tasks:
        entry = task.model_dump(mode="json", exclude_unset=True)
        key = _missing_key(task)
        if key is not None:
            entry["payload"] = {**task.payload, key: folder}
            notes.append((task.id, default_folder_note(key, folder, source)))
        tasks.append(entry)
    if not notes:
        return None, []
    document: dict[str, object] = {"tasks": tasks}
    if spec.project is not None:
        document["project"] = spec.project
    return json.dumps(document, ensure_ascii=False), notes


def _missing_key(task: TaskSpec) -> str | None:
    key = folder_key(task.required_skills)
    if key is None or any(k in task.payload for k in FOLDER_KEYS):
        return None
    return key


def fill_in(text: str, label: str, file: str, given: str | None) -> tuple[str, list[tuple[str, str]]]:
    """`load FILE [--default-path FOLDER]`: the text to send and the warnings to print after it.

    The folder is `given`, else the name of the folder holding FILE (none for stdin); `.`
    leaves every task as written."""
    if given is not None:
        folder, source = given.strip().strip("/") or ".", "--default-path"
    elif file != "-":
        found = Path(file).expanduser().resolve().parent
        folder, source = found.name, f"the folder holding {Path(file).name}"
    else:
        return text, []
    if folder in (".", ""):
        return text, []
    filled, notes = with_project_folder(parse_project(text, label), folder, source)
    return (filled if filled is not None else text), notes
