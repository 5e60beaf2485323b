"""Fixtures for the devops worker suite: the real Docker engine (or a skip saying why there is
none) for the integration tests (`pm`, a recording PM client for unit tests, comes from
workers/conftest.py)."""

from __future__ import annotations

import os

import pytest


def local_base_image() -> tuple[str | None, str]:
    """(a local Python base image, why not) — PYTHON_IMAGE if set, else a python:*-slim the engine has."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        return None, f"no Docker engine answers ({type(exc).__name__}: {exc})"
    try:
        candidates = [os.environ.get("PYTHON_IMAGE") or "", "python:3.11-slim", "python:3.12-slim"]
        for name in filter(None, candidates):
            try:
                client.images.get(name)
                return name, ""
            except docker.errors.ImageNotFound:
                continue
        return None, (
            f"the engine has none of {', '.join(filter(None, candidates))} and there is no registry; "
            'run `eval "$(../shared/docker/ensure-engine.sh)"` first'
        )
    finally:
        client.close()


@pytest.fixture(scope="session")
def base_image() -> str:
    image, why = local_base_image()
    if image is None:
        pytest.skip(f"Docker integration test skipped: {why}")
    return image
