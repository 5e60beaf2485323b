"""Every stub setting can be changed from .env, and the compose defaults are the stub's own.

A setting the compose file does not pass through cannot be changed in a deployment without
editing the file (and Kubernetes mirrors compose: test_k8s_manifests.py); a default written
differently in compose than in settings.py is two definitions of one knob.
"""

from __future__ import annotations

from pm_agent_stub.settings import StubSettings
from tests.deploy.manifests import REPO_ROOT, compose_services

# Set by the stub image itself (pm_agent_stub/Dockerfile `ENV`): the container's own address
# and its volume's path, not something a deployment picks.
FROM_THE_IMAGE = {"PM_AGENT_HOST", "PM_AGENT_PORT", "PM_AGENT_DB"}
# Compose's choice differs from the library default on purpose.
COMPOSE_CHOICES = {
    "LOG_FORMAT": "json lines for `docker compose logs` and log shippers (the CLI picks by tty)"
}


def aliases() -> dict[str, str]:
    """Environment variable -> field name, for every StubSettings field."""
    found = {}
    for name, field in StubSettings.model_fields.items():
        assert isinstance(field.validation_alias, str), name
        found[field.validation_alias] = name
    return found


def test_every_stub_setting_is_passed_through_by_compose() -> None:
    compose_env = compose_services()["pm-agent"]["environment"]
    missing = set(aliases()) - set(compose_env) - FROM_THE_IMAGE
    assert not missing, f"stub settings docker-compose.yml does not pass to the stub: {sorted(missing)}"
    unknown = set(compose_env) - set(aliases())
    assert not unknown, f"docker-compose.yml passes variables the stub does not read: {sorted(unknown)}"


def test_compose_defaults_are_the_stubs_defaults() -> None:
    compose_env = compose_services()["pm-agent"]["environment"]
    defaults = StubSettings.model_validate({})
    from_compose = StubSettings.model_validate(compose_env)
    for variable, name in aliases().items():
        if variable in FROM_THE_IMAGE or variable in COMPOSE_CHOICES:
            continue
        assert getattr(from_compose, name) == getattr(defaults, name), (
            f"{variable}: docker-compose.yml's default {compose_env[variable]!r} is not the stub's "
            f"{getattr(defaults, name)!r}"
        )


def test_env_example_names_every_setting_compose_reads() -> None:
    example = {
        line.split("=", 1)[0]
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    compose_env = compose_services()["pm-agent"]["environment"]
    assert not set(compose_env) - example, sorted(set(compose_env) - example)
