"""`make up`'s two checks around `docker compose up`: the port before it, the board after it.

    python3 scripts/fleet_up.py check-port   # before: refuse a taken port with one line, start nothing
    python3 scripts/fleet_up.py board        # after: say whether the board is empty or kept, and what it holds

Why: on a taken port `docker compose up` printed the engine's raw "Bind for 127.0.0.1:8000
failed: port is already allocated" and left four containers "Created"; and the stub's board
lives in the `pm-data` volume, so after an earlier run "make up starts with an empty board"
was not true, and nothing said so.

The port is PM_AGENT_PORT as Compose resolves it (the environment, else .env, else 8000).
Given in the environment it is written to .env, so `make status`, `make show` and any later
`docker compose` command use the same port. Standard library only: it runs with the host's
python3, before any venv exists.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"
DEFAULT_PORT = "8000"


def dotenv() -> dict[str, str]:
    """The settings of .env (the last of each wins, quotes removed), as Compose reads them."""
    found: dict[str, str] = {}
    if not ENV_FILE.exists():
        return found
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            found[key.strip()] = value.strip().strip("'\"")
    return found


def setting(name: str, default: str = "") -> str:
    return os.environ.get(name) or dotenv().get(name) or default


def port_is_free(port: int) -> bool:
    """Whether something could listen on 127.0.0.1:port (TIME-WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def published_by_this_fleet() -> str:
    """`host:port` this Compose project's stub publishes now ('' when it is not running)."""
    compose = os.environ.get("COMPOSE", "docker compose").split()
    try:
        found = subprocess.run(
            [*compose, "port", "pm-agent", "8000"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


def a_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record_port(port: str) -> None:
    """PM_AGENT_PORT given in the environment goes to .env, for every later command."""
    if os.environ.get("PM_AGENT_PORT") is None or dotenv().get("PM_AGENT_PORT") == port:
        return
    lines = ENV_FILE.read_text(encoding="utf-8").splitlines() if ENV_FILE.exists() else []
    kept = [ln for ln in lines if ln.partition("=")[0].strip() != "PM_AGENT_PORT"]
    tmp = ENV_FILE.with_name(f".env.{os.getpid()}.tmp")
    tmp.write_text("\n".join([*kept, f"PM_AGENT_PORT={port}"]) + "\n", encoding="utf-8")
    os.replace(tmp, ENV_FILE)
    print(
        f"fleet_up: PM_AGENT_PORT={port} kept in {ENV_FILE.name}: make status, make show and docker compose "
        "use it too",
        file=sys.stderr,
    )


def check_port() -> int:
    port = setting("PM_AGENT_PORT", DEFAULT_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"make up: PM_AGENT_PORT={port!r} is not a port number (1-65535)", file=sys.stderr)
        return 2
    ours = published_by_this_fleet()
    if ours.rsplit(":", 1)[-1] != port and not port_is_free(int(port)):
        print(
            f"make up: port {port} on 127.0.0.1 is taken (another fleet? `docker compose ls`; a `make demo`?), "
            "so the stub could not be published; nothing was started. Use another port, for the fleet "
            f"and for make status alike: PM_AGENT_PORT={a_free_port()} make up (it is kept in .env)",
            file=sys.stderr,
        )
        return 1
    record_port(port)
    return 0


def board() -> int:
    """Say what the stub's board holds right after `up`: empty, or kept from an earlier run."""
    port = setting("PM_AGENT_PORT", DEFAULT_PORT)
    token = setting("PM_AGENT_TOKEN")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/dashboard/api/board")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            counts = json.load(answer)["project_status"]
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        print(f"make up: could not read the board at 127.0.0.1:{port} ({exc})", file=sys.stderr)
        return 0  # the fleet is up; this line is only information
    total = int(counts["total_tasks"])
    if not total:
        print(
            "make up: the board is empty; add tasks with `make load FILE=...` (or `make up DEMO=1` for the demo's)",
            file=sys.stderr,
        )
        return 0
    print(
        f"make up: the board is kept from an earlier run (the stub's volume pm-data): {total} tasks, "
        f"{counts['done']} done, {counts['blocked']} blocked, {counts['in_progress']} in progress, "
        f"{counts['todo']} to do. `make load` adds only tasks not on it yet (by id); `make rerun TASK=...` "
        "runs one again; `docker compose down -v` starts over with an empty board (it also resets the "
        "workspace volume; a PROJECT_DIR folder is yours and not touched)",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str]) -> int:
    if argv == ["check-port"]:
        return check_port()
    if argv == ["board"]:
        return board()
    print("usage: fleet_up.py check-port | fleet_up.py board", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
