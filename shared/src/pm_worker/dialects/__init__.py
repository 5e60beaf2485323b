"""How pm_worker speaks to one PM server: its dialect.

| module | holds |
|---|---|
| `base.py` | the `Dialect` protocol (`call(send, tool, args)`, `error(tool, answer)`), `Send`, `UNSET` |
| `stub.py` | `StubDialect`: the contract as it is (`pm_protocol.call`) |
| `marcus.py` | `MarcusDialect`: each tool translated to upstream Marcus 0.3.8 (pieces in `pm_worker.marcus`) |
| `choose.py` | `dialect_for_tools` (`PM_PROTOCOL=auto`) and `make_dialect` (its names: `protocol_settings.DialectName`) |
"""

from __future__ import annotations

from pm_worker.dialects.base import UNSET, Dialect, Send
from pm_worker.dialects.choose import dialect_for_tools, make_dialect
from pm_worker.protocol_settings import DialectName

__all__ = ["UNSET", "Dialect", "DialectName", "Send", "dialect_for_tools", "make_dialect"]
