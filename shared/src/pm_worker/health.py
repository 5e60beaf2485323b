"""Per-process health records for container HEALTHCHECKs.

Each worker process rewrites `<HEALTH_DIR>/<agent id>.json` every few seconds from its
event loop; `python -m pm_worker.health` exits 0 only if a record is fresh and its
process is alive. One record per replica (not a shared key), so a stuck replica is seen.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FRESH_SECONDS = 15.0
REFRESH_SECONDS = 3.0


def default_health_dir() -> Path:
    return Path(tempfile.gettempdir()) / "pm-worker-health"


def record_path(health_dir: Path, agent_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", agent_id)[:150]
    return health_dir / f"{safe}.json"


def write_record(health_dir: Path, agent_id: str, state: str, **extra: Any) -> None:
    health_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(health_dir, agent_id)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {"agent_id": agent_id, "pid": os.getpid(), "state": state, "updated_at": time.time(), **extra}
        )
    )
    tmp.replace(path)


def remove_record(health_dir: Path, agent_id: str) -> None:
    record_path(health_dir, agent_id).unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check(health_dir: Path, agent_id: str | None = None, max_age: float = FRESH_SECONDS) -> tuple[bool, str]:
    """(healthy, reason). Without an agent id any fresh record counts (one worker per container)."""
    paths = [record_path(health_dir, agent_id)] if agent_id else sorted(health_dir.glob("*.json"))
    if not paths or not any(p.exists() for p in paths):
        return False, f"no health record in {health_dir}"
    reasons = []
    for path in paths:
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            reasons.append(f"{path.name}: unreadable ({exc})")
            continue
        age = time.time() - float(rec.get("updated_at", 0))
        if age > max_age:
            reasons.append(f"{rec.get('agent_id')}: record is {age:.0f}s old")
        elif not _pid_alive(int(rec.get("pid", -1))):
            reasons.append(f"{rec.get('agent_id')}: process {rec.get('pid')} is gone")
        else:
            return True, f"{rec.get('agent_id')}: {rec.get('state')} ({age:.1f}s ago)"
    return False, "; ".join(reasons)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pm_worker.health", description=__doc__)
    parser.add_argument("--agent-id", help="check this agent's record (default: any record in HEALTH_DIR)")
    parser.add_argument("--max-age", type=float, default=FRESH_SECONDS)
    args = parser.parse_args(argv)
    health_dir = Path(os.environ.get("HEALTH_DIR") or default_health_dir())
    ok, reason = check(health_dir, args.agent_id, args.max_age)
    print(("healthy: " if ok else "unhealthy: ") + reason)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
