"""deploy/k8s: rendered by kustomize, valid for pinned Kubernetes versions, in agreement with
docker-compose.yml (images, settings, ports, limits, grace, health checks), and the KEDA
component valid and counting exactly the tasks each worker can take. No cluster needed.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from devops_worker.worker import DevOpsWorker
from documentation_worker.worker import DocumentationWorker
from pm_agent_stub.testing import start_stub
from testing_worker.worker import TestingWorker
from tests.deploy.manifests import (
    K8S,
    compose_services,
    healthcheck_command,
    kustomize,
    memory_bytes,
    seconds,
)
from tests.helpers import REPO_ROOT

#: the oldest Kubernetes the manifests claim (native sidecars: 1.29) and the newest schema known
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
KEDA_SCHEMA = json.loads((K8S / "schemas" / "keda-scaledobject-v1alpha1.schema.json").read_text())
WORKER_SKILLS = {
    "documentation-worker": DocumentationWorker.skills,
    "testing-worker": TestingWorker.skills,
    "devops-worker": DevOpsWorker.skills,
}

# Where Kubernetes differs from Compose on purpose, and why.
K8S_ONLY_IMAGES = {
    "docker:27-dind": "the devops worker's own engine (a sidecar); Compose mounts the host's socket"
}
K8S_ONLY_ENV = {
    "PM_AGENT_TOKEN_FILE": "workers read the token from the mounted Secret; Compose passes PM_AGENT_TOKEN",
}
FROM_SECRETS = {
    "PM_AGENT_TOKEN": "the Secret pm-agent-token (a file for the workers, the variable for the stub)",
    "ANTHROPIC_API_KEY": "the Secret llm-api-keys",
    "LLM_API_KEY": "the Secret llm-api-keys",
}
#: the keys each Secret given whole (`envFrom.secretRef`) holds, as llm-worker.yaml documents
SECRET_KEYS = {"llm-api-keys": ("ANTHROPIC_API_KEY", "LLM_API_KEY")}
OTHER_VALUES = {
    ("devops-worker", "DOCKER_HOST"): "the sidecar engine's socket, not the host's",
    (
        "pm-agent",
        "PM_METRICS_PUBLIC",
    ): "Prometheus scrapes the pod by annotation, without the token; Compose has no scraper",
}


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize(K8S)


@pytest.fixture(scope="module")
def with_keda(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The base plus the keda component, as a user's overlay would add it."""
    overlay = tmp_path_factory.mktemp("overlay")
    base = os.path.relpath(K8S, overlay)  # kustomize takes no absolute paths
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{base}]\ncomponents: [{base}/keda]\n"
    )
    return kustomize(overlay)


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workload(docs: list[dict[str, Any]], service: str) -> dict[str, Any]:
    """The StatefulSet or Deployment named like a compose service."""
    for d in docs:
        if d["kind"] in ("StatefulSet", "Deployment") and d["metadata"]["name"] == service:
            return d
    raise AssertionError(f"no Deployment or StatefulSet for the compose service {service}")


def main_container(obj: dict[str, Any]) -> dict[str, Any]:
    [container] = obj["spec"]["template"]["spec"]["containers"]
    return container


def effective_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """A container's environment: its ConfigMaps' data, then `env` (later wins); values from
    a Secret appear as `<secret NAME>`."""
    config_maps = objects(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            env.update({key: f"<secret {name}>" for key in SECRET_KEYS[name]})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = f"<secret {item['valueFrom']['secretKeyRef']['name']}>"
    return env


# -- schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_the_pinned_kubernetes_version(
    rendered: list[dict[str, Any]], version: str
) -> None:
    kinds = {d["kind"] for d in rendered}
    assert kinds == {"ConfigMap", "Service", "StatefulSet", "Deployment", "PersistentVolumeClaim"}, kinds
    for doc in rendered:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_refuses_a_misspelled_field(rendered: list[dict[str, Any]]) -> None:
    stub = copy.deepcopy(objects(rendered, "StatefulSet")["pm-agent"])
    stub["spec"]["template"]["spec"]["terminationGracePeriod"] = 15
    with pytest.raises(kubernetes_validate.ValidationError, match="terminationGracePeriod"):
        kubernetes_validate.validate(stub, KUBERNETES_VERSIONS[-1], strict=True)


# -- agreement with docker-compose.yml ------------------------------------------------


def test_images_are_the_compose_images(rendered: list[dict[str, Any]]) -> None:
    compose = compose_services()
    k8s_images = set()
    for d in rendered:
        if d["kind"] in ("StatefulSet", "Deployment"):
            pod = d["spec"]["template"]["spec"]
            k8s_images |= {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
    compose_images = {s["image"] for s in compose.values()}
    assert k8s_images - set(K8S_ONLY_IMAGES) == compose_images
    for service, spec in compose.items():
        if service == "workspace-seed":
            seed = next(
                c
                for c in workload(rendered, "pm-agent")["spec"]["template"]["spec"]["initContainers"]
                if c["name"] == "workspace-seed"
            )
            assert (seed["image"], seed["command"]) == (spec["image"], spec["command"])
        else:
            assert main_container(workload(rendered, service))["image"] == spec["image"], service


@pytest.mark.parametrize(
    "service", ["pm-agent", "documentation-worker", "testing-worker", "devops-worker", "llm-worker"]
)
def test_settings_are_the_compose_settings(rendered: list[dict[str, Any]], service: str) -> None:
    compose_env = compose_services()[service]["environment"]
    k8s_env = effective_env(rendered, main_container(workload(rendered, service)))
    missing = set(compose_env) - set(k8s_env) - ({"PM_AGENT_TOKEN"} if service != "pm-agent" else set())
    assert not missing, f"{service}: set in docker-compose.yml, not in deploy/k8s: {sorted(missing)}"
    extra = set(k8s_env) - set(compose_env) - set(K8S_ONLY_ENV)
    assert not extra, f"{service}: set in deploy/k8s, not in docker-compose.yml: {sorted(extra)}"
    for name, value in compose_env.items():
        if name in FROM_SECRETS:
            assert name not in k8s_env or k8s_env[name].startswith("<secret "), (
                service,
                name,
                "must come from a Secret",
            )
        elif (service, name) not in OTHER_VALUES:
            assert k8s_env[name] == value, (
                f"{service}: {name} is {k8s_env[name]!r} here, {value!r} in compose"
            )
    if service == "pm-agent":
        assert k8s_env["PM_AGENT_TOKEN"] == "<secret pm-agent-token>"
    else:
        assert k8s_env["PM_AGENT_TOKEN_FILE"] == "/run/secrets/pm-agent-token"


def test_workers_read_the_token_from_the_mounted_secret(rendered: list[dict[str, Any]]) -> None:
    for name, d in objects(rendered, "Deployment").items():
        pod = d["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "pm-agent-token")
        assert volume["secret"] == {
            "secretName": "pm-agent-token",
            "items": [{"key": "token", "path": "pm-agent-token"}],
        }, name
        mount = next(m for m in main_container(d)["volumeMounts"] if m["name"] == "pm-agent-token")
        assert (mount["mountPath"], mount["readOnly"]) == ("/run/secrets", True), name


def test_ports_and_the_workers_url_agree(rendered: list[dict[str, Any]]) -> None:
    [compose_port] = compose_services()["pm-agent"]["ports"]
    target = int(compose_port.rsplit(":", 1)[-1])
    [container_port] = main_container(workload(rendered, "pm-agent"))["ports"]
    assert container_port == {"name": "http", "containerPort": target}
    [service_port] = objects(rendered, "Service")["pm-agent"]["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (target, "http")
    worker_url = objects(rendered, "ConfigMap")
    url = next(m["data"]["PM_AGENT_URL"] for m in worker_url.values() if "PM_AGENT_URL" in m.get("data", {}))
    assert url == f"http://pm-agent:{target}/mcp", "the Service's name and port"


def test_limits_and_grace_periods_agree(rendered: list[dict[str, Any]]) -> None:
    compose = compose_services()
    worker_settings = next(
        m["data"] for m in objects(rendered, "ConfigMap").values() if "SHUTDOWN_GRACE_SECONDS" in m["data"]
    )
    for service, spec in compose.items():
        if service == "workspace-seed":
            continue
        obj = workload(rendered, service)
        limit = main_container(obj)["resources"]["limits"]["memory"]
        assert memory_bytes(limit) == memory_bytes(spec["deploy"]["resources"]["limits"]["memory"]), service
        grace = obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace == seconds(spec["stop_grace_period"]), service
        if service != "pm-agent":
            assert grace > float(worker_settings["SHUTDOWN_GRACE_SECONDS"]), (
                f"{service}: Kubernetes would kill the worker before its own grace ends"
            )


def test_probes_run_the_images_health_checks(rendered: list[dict[str, Any]]) -> None:
    worker_check = healthcheck_command(REPO_ROOT / "workers" / "Dockerfile")
    assert worker_check == ["python", "-m", "pm_worker.health"]
    for name, d in objects(rendered, "Deployment").items():
        container = main_container(d)
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == worker_check, (name, probe)
            assert container[probe]["timeoutSeconds"] >= 10, "a loaded node needs room"
    stub_check = " ".join(healthcheck_command(REPO_ROOT / "pm_agent_stub" / "Dockerfile"))
    assert "/healthz" in stub_check
    stub = main_container(workload(rendered, "pm-agent"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # /healthz checks the Host header like /mcp: the kubelet's default (the pod IP) gets 421
        assert stub[probe]["httpGet"] == {
            "path": "/healthz",
            "port": "http",
            "httpHeaders": [{"name": "Host", "value": "localhost"}],
        }, probe


def test_every_container_runs_as_the_service_user_but_the_engine_sidecar(
    rendered: list[dict[str, Any]],
) -> None:
    for d in rendered:
        if d["kind"] not in ("StatefulSet", "Deployment"):
            continue
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"] + pod.get("initContainers", []):
            ctx = {**pod["securityContext"], **c.get("securityContext", {})}
            where = f"{d['metadata']['name']}/{c['name']}"
            if c["image"] in K8S_ONLY_IMAGES:
                assert ctx["privileged"] is True, where  # said plainly in devops-worker.yaml
                assert c["restartPolicy"] == "Always", "a native sidecar"
                continue
            assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (10001, 10001, True), where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert "memory" in c["resources"]["limits"], where


def test_storage_one_writer_and_a_shared_workspace(rendered: list[dict[str, Any]]) -> None:
    stub = workload(rendered, "pm-agent")
    assert stub["kind"] == "StatefulSet"
    assert stub["spec"]["replicas"] == 1
    [data] = stub["spec"]["volumeClaimTemplates"]
    assert data["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert objects(rendered, "PersistentVolumeClaim")["workspace"]["spec"]["accessModes"] == ["ReadWriteMany"]
    mounts = {m["mountPath"]: m for m in main_container(stub)["volumeMounts"]}
    assert mounts["/data"]["name"] == "data"
    assert mounts["/workspace"]["readOnly"] is True, "as in compose: the stub only reads the workspace"
    for name, d in objects(rendered, "Deployment").items():
        claims = {
            v["persistentVolumeClaim"]["claimName"]
            for v in d["spec"]["template"]["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert claims == {"workspace"}, name


def test_the_devops_worker_reaches_its_sidecar_engine_over_a_socket_only(
    rendered: list[dict[str, Any]],
) -> None:
    pod = workload(rendered, "devops-worker")["spec"]["template"]["spec"]
    [dind] = pod["initContainers"]
    assert "--host=unix:///run/dind/docker.sock" in dind["args"]
    assert not [a for a in dind["args"] if a.startswith("--host=tcp")], "no TCP listener"
    assert "--group=10001" in dind["args"], "the worker's gid may use the socket"
    env = {e["name"]: e.get("value") for e in main_container(workload(rendered, "devops-worker"))["env"]}
    assert env["DOCKER_HOST"] == "unix:///run/dind/docker.sock"


# -- scaling on queue depth (keda/) ---------------------------------------------------


def scaled_objects(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return objects(docs, "ScaledObject")


def test_scaled_objects_match_the_pinned_keda_schema(with_keda: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(KEDA_SCHEMA)
    found = scaled_objects(with_keda)
    assert found
    for name, obj in found.items():
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
        assert not errors, f"{name}: {errors}"
    others = [d for d in with_keda if d["kind"] != "ScaledObject"]
    for doc in others:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("spec", "triggers", 0, "metadata", "treshold"), "1", "'treshold' was unexpected"),
        (("spec", "maxReplicas"), 3, "'maxReplicas' was unexpected"),
        (("spec", "triggers", 0, "metadata", "threshold"), None, "'threshold' is a required property"),
        (("spec", "triggers", 0, "metadata", "threshold"), "one", "does not match"),
    ],
)
def test_the_keda_schema_refuses_mistakes(
    with_keda: list[dict[str, Any]], path: tuple[Any, ...], value: Any, error: str
) -> None:
    obj = copy.deepcopy(next(iter(scaled_objects(with_keda).values())))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    messages = [e.message for e in jsonschema.Draft202012Validator(KEDA_SCHEMA).iter_errors(obj)]
    assert any(error in m for m in messages), messages


def test_every_scaled_worker_has_one_scaled_object_on_its_deployment(with_keda: list[dict[str, Any]]) -> None:
    deployments = objects(with_keda, "Deployment")
    found = scaled_objects(with_keda)
    assert {so["spec"]["scaleTargetRef"]["name"] for so in found.values()} == set(WORKER_SKILLS)
    for so in found.values():
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        assert so["spec"]["minReplicaCount"] >= 1, "one warm worker: a ready task is taken at once"


def _skills_matcher(so: dict[str, Any]) -> re.Pattern[str]:
    [trigger] = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    match = re.fullmatch(
        r'\(sum\(pm_agent_ready_tasks\{skills=~"(.*)"\}\) or vector\(0\)\) \+ '
        r'\(sum\(pm_agent_in_progress_tasks\{skills=~"(.*)"\}\) or vector\(0\)\)',
        trigger["metadata"]["query"],
    )
    assert match is not None, trigger["metadata"]["query"]
    assert match.group(1) == match.group(2), "waiting and running tasks are counted for the same skill sets"
    return re.compile(match.group(1))  # PromQL regexes are RE2, anchored; this one is plain


def signature(skills: tuple[str, ...]) -> str:
    """The metric's `skills` label: lower-cased, sorted, distinct, comma-joined (COMMON contract)."""
    return ",".join(sorted({s.lower() for s in skills}))


@pytest.mark.parametrize("worker", sorted(WORKER_SKILLS))
def test_each_query_counts_exactly_the_tasks_its_worker_can_take(
    with_keda: list[dict[str, Any]], worker: str
) -> None:
    so = next(s for s in scaled_objects(with_keda).values() if s["spec"]["scaleTargetRef"]["name"] == worker)
    pattern = _skills_matcher(so)
    own = WORKER_SKILLS[worker]
    for n in range(len(own) + 1):
        for subset in itertools.combinations(own, n):
            assert pattern.fullmatch(signature(subset)), (
                f"{worker} can take {subset!r}: the query must count it"
            )
    others = {s for skills in WORKER_SKILLS.values() for s in skills} - set(own)
    for foreign in sorted(others):
        for mixed in ((foreign,), (own[0], foreign)):
            assert not pattern.fullmatch(signature(mixed)), (
                f"{worker} cannot take {mixed!r}: the query counts it"
            )


# -- the probes against the real stub -------------------------------------------------


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_stub_probe_is_answered_where_the_kubelets_default_is_refused(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The kubelet sends the pod's IP as Host unless the probe names one: the real stub
    refuses that (its Host allow-list) and answers the probe as written."""
    probe = main_container(workload(rendered, "pm-agent"))["livenessProbe"]["httpGet"]
    stub = start_stub(tmp_path / "board.db")
    try:
        url = f"{stub.base_url}{probe['path']}"
        assert _get(url, {"Host": "10.42.0.17:8000"}) == 421, "the default Host of a kubelet probe"
        assert _get(url, {h["name"]: h["value"] for h in probe["httpHeaders"]}) == 200
    finally:
        stub.stop()
