"""Reshape a Compose config for `docker stack deploy` (Swarm's loader is the older v3 schema).

    docker compose config --format json | python -m devops_worker.swarm > stack.yml   # make stack-config
    docker stack deploy -c stack.yml pm-agent-fleet

`docker compose config` first resolves every `${VAR:-default}` (and .env); its JSON is
valid YAML, so the output goes to `docker stack deploy` as it is. Then, for Swarm:

- `name:` goes (the stack name is the deploy command's argument);
- `depends_on` becomes a plain list (Swarm ignores ordering and health conditions anyway:
  services restart until what they need answers);
- `build:` goes (Swarm only pulls: push the images to a registry first);
- `group_add` is not in Swarm's schema, so the service that had it (the devops worker, for
  the Docker socket's group) runs as root (`user: "0:0"`) instead;
- published ports become integers, and `host_ip` goes: Swarm's routing mesh publishes on
  every interface of every node, so put the stub behind a firewall or use `mode: host`;
- Compose's explicit resource names, null keys and empty `bind:`/`volume:` options go.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def to_swarm(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    out.pop("name", None)
    services: dict[str, Any] = {}
    for name, svc in (config.get("services") or {}).items():
        s = {k: v for k, v in svc.items() if v is not None}  # JSON output spells unset keys as null
        if isinstance(s.get("depends_on"), dict):
            s["depends_on"] = sorted(s["depends_on"])
        s.pop("build", None)
        s.pop("pull_policy", None)
        if s.pop("group_add", None):
            s["user"] = "0:0"
        ports = []
        for port in s.get("ports") or []:
            if isinstance(port, dict):
                port = dict(port)
                port.pop("host_ip", None)
                if "published" in port:
                    port["published"] = int(port["published"])
            ports.append(port)
        if ports:
            s["ports"] = ports
        volumes = []
        for vol in s.get("volumes") or []:
            if isinstance(vol, dict):
                vol = {k: v for k, v in vol.items() if not (k in ("bind", "volume") and not v)}
            volumes.append(vol)
        if volumes:
            s["volumes"] = volumes
        services[name] = s
    out["services"] = services
    for section in ("networks", "volumes"):
        if isinstance(out.get(section), dict):
            out[section] = {k: ({kk: vv for kk, vv in v.items() if kk != "name"} if isinstance(v, dict) else v)
                            for k, v in out[section].items()}
    return out


def main() -> int:
    try:
        config = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        config, error = None, f" ({exc})"
    else:
        error = ""
    if not isinstance(config, dict) or "services" not in config:
        print(f"devops_worker.swarm: expected `docker compose config --format json` on stdin{error}", file=sys.stderr)
        return 2
    json.dump(to_swarm(config), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
