"""Reshape a Compose config for `docker stack deploy` (Swarm's loader is the older v3 schema).

    docker compose config --format json | python -m devops_worker.swarm > stack.yml   # make stack-config
    deploy/swarm/stack.sh up pm-agent-fleet stack.yml                                 # make stack-up

`docker compose config` first resolves every `${VAR:-default}` (and .env); its JSON is
valid YAML, so the output goes to `docker stack deploy` as it is. Then, for Swarm:

- every service gets `deploy.endpoint_mode: dnsrr`: its name resolves to its tasks' own
  addresses instead of a virtual IP. A VIP needs IPVS in every node's kernel, which some
  kernels lack (then `pm-agent` resolves but never answers); DNS round robin works on all,
  and nothing here needs a VIP: the stub has one replica, and no one calls a worker;
- published ports get `mode: host` (the routing mesh's ingress mode is a VIP too, and Swarm
  refuses it with dnsrr) and lose `host_ip`, which Swarm cannot express: the stub's port is
  then open on every interface of the node it runs on, so keep PM_AGENT_TOKEN set;
- `name:` goes (the stack name is the deploy command's argument);
- `depends_on` becomes a plain list (Swarm ignores ordering and health conditions anyway:
  services restart until what they need answers);
- `build:` and `pull_policy` go (Swarm runs images: on one node the ones `docker compose
  build` made, on several from a registry), and so does `restart:` (Swarm uses
  `deploy.restart_policy`, which the compose file sets too);
- Compose's explicit resource names, null keys and empty `bind:`/`volume:` options go.

The input is not changed. Why each choice: docs/docker.md, "Swarm".
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: service keys Swarm does not use (it warns "Ignoring unsupported options" for `restart`)
COMPOSE_ONLY_KEYS = ("build", "pull_policy", "restart")


def swarm_port(port: Any) -> Any:
    """A published port as Swarm takes it: host mode, an integer, no host IP."""
    if not isinstance(port, dict):
        return port
    out = {k: v for k, v in port.items() if k != "host_ip"}
    out["mode"] = "host"
    if "published" in out:
        out["published"] = int(out["published"])
    return out


def swarm_volume(volume: Any) -> Any:
    """A service's volume without the empty `bind:`/`volume:` options Compose spells out."""
    if not isinstance(volume, dict):
        return volume
    return {k: v for k, v in volume.items() if not (k in ("bind", "volume") and not v)}


def swarm_service(service: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in service.items() if v is not None and k not in COMPOSE_ONLY_KEYS}
    if isinstance(out.get("depends_on"), dict):
        out["depends_on"] = sorted(out["depends_on"])
    out["deploy"] = {**(out.get("deploy") or {}), "endpoint_mode": "dnsrr"}
    if out.get("ports"):
        out["ports"] = [swarm_port(p) for p in out["ports"]]
    if out.get("volumes"):
        out["volumes"] = [swarm_volume(v) for v in out["volumes"]]
    return out


def to_swarm(config: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in config.items() if k != "name"}
    out["services"] = {name: swarm_service(svc) for name, svc in (config.get("services") or {}).items()}
    for section in ("networks", "volumes"):
        if isinstance(out.get(section), dict):
            out[section] = {
                k: ({kk: vv for kk, vv in v.items() if kk != "name"} if isinstance(v, dict) else v)
                for k, v in out[section].items()
            }
    return out


def main() -> int:
    try:
        config = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        config, error = None, f" ({exc})"
    else:
        error = ""
    if not isinstance(config, dict) or "services" not in config:
        print(
            f"devops_worker.swarm: expected `docker compose config --format json` on stdin{error}",
            file=sys.stderr,
        )
        return 2
    json.dump(to_swarm(config), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
