"""Pages of the lists that grow with the board, and the cursors that continue them.

A page holds at most `limit` entries and at most `limits.PAGE_BYTES` of JSON, but always at
least one entry, so an answer's size is bounded however much the board holds and a page
always moves forward. A cursor is opaque to clients: URL-safe base64 of a small JSON object
naming what it pages (`k`), whose list it is (`t`: the task, for a task's context) and where
each list goes on. A cursor this stub did not give out is refused with `invalid_argument`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from pm_agent_stub.errors import BoardError
from pm_protocol.limits import PAGE_BYTES, dumps
from pm_protocol.results import WireModel


def wire_size(item: WireModel) -> int:
    """Bytes of the item's compact JSON: what a page's byte budget is counted in."""
    return len(dumps(item.wire()).encode())


def fitting(sizes: Sequence[int], limit: int, budget: int = PAGE_BYTES) -> int:
    """How many leading entries of these sizes make one page: ≤ limit, ≤ budget bytes, at least one."""
    used = 0
    for count, size in enumerate(sizes[:limit]):
        if count and used + size > budget:
            return count
        used += size
    return min(len(sizes), limit)


def encode_cursor(kind: str, position: dict[str, Any]) -> str:
    raw = dumps({"k": kind, **position}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(tool: str, kind: str, cursor: str) -> dict[str, Any]:
    """The position a cursor of `kind` holds; invalid_argument if it is not one this stub made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        position = None
    if not isinstance(position, dict) or position.pop("k", None) != kind:
        raise BoardError(
            "invalid_argument",
            f"{tool}: argument 'cursor' is not a cursor {tool} gave out; pass the next_cursor of the "
            "previous page unchanged, or leave cursor out for the first page.",
        )
    return position


def refuse_cursor(tool: str, why: str) -> BoardError:
    return BoardError(
        "invalid_argument",
        f"{tool}: argument 'cursor' {why}; pass the next_cursor of the previous page unchanged, "
        "or leave cursor out for the first page.",
    )
