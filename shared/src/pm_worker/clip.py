"""Cut foreign text to a size before it goes into a message: a test's output line, a build
log, a value quoted from a payload.

Each cut says how much was cut, so a reader knows the text is not whole (in the words of
`pm_worker.outgoing`, which fits whole fields to the protocol's limits as they are sent;
workers bound what they build at the source with these, keeping the head or the tail).
"""

from __future__ import annotations

from typing import Any, Literal


def clip(text: str, limit: int, *, keep: Literal["head", "tail"] = "head") -> str:
    """`text` if it has at most `limit` characters, else its head (or tail) and a marker; never over `limit`."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:  # the marker's own length depends on the number in it
        marker = f"… [cut {cut:,} characters]"
        keep_chars = max(0, limit - len(marker))
        if len(text) - keep_chars == cut:
            break
        cut = len(text) - keep_chars
    if keep == "head":
        return (text[:keep_chars] + marker)[:limit]
    return (marker + text[len(text) - keep_chars:])[-limit:] if keep_chars else marker[:limit]


def shown(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters: how a refused value is quoted back."""
    return clip(repr(value), limit)
