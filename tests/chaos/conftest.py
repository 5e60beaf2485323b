"""Put `tests/` (for `helpers.stubproc`) and `tests/reliability/` (for `boardcheck`) on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _path in (_TESTS, _TESTS / "reliability"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
