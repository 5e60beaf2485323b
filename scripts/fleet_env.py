"""Record your project in .env for the Compose fleet: `make up PROJECT_DIR=~/src/app` runs this.

    python3 scripts/fleet_env.py project ~/src/app    # PROJECT_DIR, PROJECT_NAME, PM_UID, PM_GID
    python3 scripts/fleet_env.py forget               # drop them again

Why a file: docker-compose.yml mounts `${PROJECT_DIR}` at `/workspace/${PROJECT_NAME}` and runs
the workers as `${PM_UID}:${PM_GID}`. Given only on one command line, the next `docker compose
up --scale testing-worker=2` (or any compose command without them) would recreate the workers
without the mount and with another user. Compose reads `.env` next to the compose file on every
command, so a setting kept there holds whatever starts the containers.

Only these four lines are touched; the rest of .env (your own settings) is kept as it is.
Standard library only: it runs with the host's python3, before any venv exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"
KEYS = ("PROJECT_DIR", "PROJECT_NAME", "PM_UID", "PM_GID")
MARK = (
    "# your project (scripts/fleet_env.py, `make up PROJECT_DIR=...`): mounted at /workspace/<PROJECT_NAME>"
)


def project_settings(given: str) -> dict[str, str]:
    """The four settings for the folder `given`; SystemExit with the reason if it cannot be mounted."""
    folder = Path(given).expanduser().resolve()
    if not folder.is_dir():
        raise SystemExit(f"PROJECT_DIR={given}: no such folder (give your project's folder, e.g. ~/src/app)")
    for bad, why in (
        (":", "Compose separates a mount's parts with ':'"),
        ("'", "it cannot be quoted in .env"),
        ("\n", "it is not one line"),
        ("$", "Compose would read it as a variable"),
    ):
        if bad in str(folder):
            raise SystemExit(f"PROJECT_DIR={folder}: contains {bad!r}, which {why}; move or link the project")
    if folder == folder.parent:
        raise SystemExit("PROJECT_DIR=/ : give your project's folder, not the root")
    st = folder.stat()
    uid, gid = st.st_uid, st.st_gid
    if uid == 0:
        print(root_owned(folder), file=sys.stderr)
    return {"PROJECT_DIR": str(folder), "PROJECT_NAME": folder.name, "PM_UID": str(uid), "PM_GID": str(gid)}


def root_owned(folder: Path) -> str:
    """What happens with a folder root owns: the workers run as its owner, root, so they can write
    it (a uid of 10001 could not, and `chown` to the caller does nothing when the caller is root);
    and how to run them as a user instead."""
    me = f"{os.getuid()}:{os.getgid()}"
    fix = (
        f"sudo chown -R {me} {folder}"
        if os.getuid() != 0
        else f"chown -R <uid>:<gid> {folder} (the user you want, e.g. 1000:1000)"
    )
    return (
        f"fleet_env: {folder} is owned by root, so the workers run as root (uid 0), its owner, to write in "
        f"it; their task commands then run as root in their containers. To run them as a user instead: {fix}, "
        "then make up again"
    )


def quoted(value: str) -> str:
    return f"'{value}'" if any(c in value for c in ' #"\t') else value


def rewrite(lines: list[str], settings: dict[str, str]) -> list[str]:
    """`lines` of a .env with the KEYS set to `settings` (or removed where absent), the rest kept."""
    kept = [ln for ln in lines if ln.strip() != MARK and ln.split("=", 1)[0].strip() not in KEYS]
    while kept and not kept[-1].strip():
        kept.pop()
    if settings:
        kept += (["", MARK] if kept else [MARK]) + [f"{k}={quoted(settings[k])}" for k in KEYS]
    return kept


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "project":
        settings = project_settings(argv[1])
    elif argv == ["forget"]:
        settings = {}
    else:
        print("usage: fleet_env.py project DIR | fleet_env.py forget", file=sys.stderr)
        return 2
    lines = ENV_FILE.read_text(encoding="utf-8").splitlines() if ENV_FILE.exists() else []
    text = "\n".join(rewrite(lines, settings)) + "\n"
    tmp = ENV_FILE.with_name(f".env.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, ENV_FILE)
    if settings:
        print(
            f"fleet_env: {settings['PROJECT_DIR']} -> /workspace/{settings['PROJECT_NAME']} in the workers, "
            f"which run as uid {settings['PM_UID']} (kept in {ENV_FILE.name}; `make forget-project` drops it)",
            file=sys.stderr,
        )
    else:
        print(
            f"fleet_env: no project in {ENV_FILE.name} any more; the next `make up` runs without one",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
