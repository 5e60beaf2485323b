"""Plain HTTP against a stub process (no redirects followed, any Host header), and the
Prometheus text format parsed with prometheus-client's own parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from http.client import HTTPConnection
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
    source: str | None = None,
) -> Answer:
    """One request; `source`: the client address to send from (any 127.x.y.z is this host)."""
    conn = HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source is not None else None
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(
            resp.status,
            {k.lower(): v for k, v in resp.getheaders()},
            resp.read(),
            resp.headers.get_all("set-cookie") or [],
        )
    finally:
        conn.close()


def post_json(port: int, path: str, payload: Any, headers: dict[str, str] | None = None) -> Answer:
    return http(
        port,
        "POST",
        path,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(payload).encode(),
    )


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def assert_promtool_accepts(exposition: bytes) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus; .ci/run does it)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr.decode() + checked.stdout.decode()
