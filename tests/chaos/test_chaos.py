"""Chaos: real stub + real step workers, SIGKILL/SIGTERM/restarts of both, audited from the stub's tables.

The short run is part of `make test`; the long one is `make chaos` (marker `chaos_long`).
Sizes come from CHAOS_* environment variables (see `ChaosConfig.from_env`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.audit import audit
from tests.chaos.chaos import ChaosConfig, run_chaos


def _run(cfg: ChaosConfig, tmp_path: Path) -> dict[str, object]:
    figures = audit(run_chaos(cfg, tmp_path))
    print("\nchaos figures: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return figures


@pytest.mark.timeout(240)
def test_chaos_short(tmp_path: Path) -> None:
    cfg = ChaosConfig.from_env(tasks=60, workers=4, kill_every=2.0, stub_restarts=2, timeout=150)
    figures = _run(cfg, tmp_path)
    assert figures["kills_of_holders"]
    assert figures["sigterms"]
    assert figures["stub_restarts"] == cfg.stub_restarts


@pytest.mark.chaos_long
@pytest.mark.timeout(1800)
def test_chaos_long(tmp_path: Path) -> None:
    cfg = ChaosConfig.from_env(tasks=500, workers=8, kill_every=2.0, stub_restarts=3, timeout=1500)
    figures = _run(cfg, tmp_path)
    assert figures["kills_of_holders"]
    assert figures["sigterms"]
    assert figures["stub_restarts"] == cfg.stub_restarts
