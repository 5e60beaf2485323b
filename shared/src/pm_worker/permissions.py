"""A `PermissionError` in a task, told the way a person can act on it.

Workers run as a non-root user (uid 10001 in the fleet's images, your own uid as local
processes), and a project copied or bind-mounted into the workspace is often owned by
someone else: the task then fails with `PermissionError: [Errno 13] ... '/workspace/app/docs'`.
What the person needs is who the worker is, which folder it cannot use, who owns that
folder, and the one command that fixes it — not a traceback. `describe` builds that text;
the work loop turns it into the task's blocker.
"""

from __future__ import annotations

import os
from pathlib import Path

CONTAINER_MARKER = Path("/.dockerenv")
FLEET_WORKSPACE = Path("/workspace")  # where the fleet's images keep it (workers/Dockerfile)


def _nearest_existing(path: Path) -> Path:
    """The deepest of `path` and its parents this process can see (a folder it may not search hides the rest)."""
    for candidate in (path, *path.parents):
        try:
            candidate.stat()
        except OSError:
            continue
        return candidate
    return Path("/")


def in_fleet_container(workspace: Path) -> bool:
    """A worker of the fleet's images under Docker (Compose): the fix then goes through `docker compose`."""
    return CONTAINER_MARKER.exists() and workspace.resolve() == FLEET_WORKSPACE


def describe(exc: PermissionError, *, role: str, in_container: bool) -> str:
    """The blocker text: who this worker is, what it may not do where, and the one command that fixes it."""
    uid, gid = os.getuid(), os.getgid()
    target = Path(str(exc.filename)) if exc.filename else None
    if target is None:
        return (
            f"permission denied ({exc.strerror or exc}); this worker runs as uid {uid} (gid {gid}): give that "
            "user access to the files the task uses"
        )
    existing = _nearest_existing(target)
    folder = existing if existing.is_dir() else existing.parent
    try:
        st = folder.stat()
        owner: tuple[int, int] | None = (st.st_uid, st.st_gid)
    except OSError:
        owner = None
    readable = os.R_OK | (os.X_OK if existing.is_dir() else 0)
    if existing != target and not os.access(existing, os.X_OK):
        what = f"cannot enter {existing} (so not {target})"
    elif existing == target and not os.access(
        target, readable
    ):  # checked first: a folder to read, not to write
        what = f"cannot read {target}"
    elif not os.access(folder, os.W_OK):
        what = f"cannot write {folder}"
    else:
        what = f"was denied access to {target}"
    owned = f" (owned by uid {owner[0]})" if owner is not None else ""
    if owner is not None and owner[0] == uid:
        fix = f"`chmod -R u+rwX {folder}`" + (
            f" (`docker compose exec {role}-worker ...`)" if in_container else ""
        )
    elif in_container and owner is not None and owner[0] != 0:
        fix = (
            f"run the fleet as the folder's owner: `PM_UID={owner[0]} PM_GID={owner[1]} make up` in the fleet's "
            "folder (Compose then runs the workers with that uid; docs/docker.md, 'Your project')"
        )
    elif in_container:
        fix = f"`docker compose exec -u 0 {role}-worker chown -R {uid}:{gid} {folder}` in the fleet's folder"
    else:
        fix = f"`sudo chown -R {uid}:{gid} {folder}`"
    return f"permission denied: uid {uid} (gid {gid}) {what}{owned}. Fix: {fix}, then rerun the task"
