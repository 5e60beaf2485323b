"""Cut foreign text to a size, saying how much was cut: the one place text is shortened.

Workers bound what they build at the source (a test's output line, a build log, a value
quoted from a payload: keep the head or the tail), and `pm_worker.outgoing` fits every field
to the protocol's limits as it is sent (keep both ends: the start says what ran, the end is
where the error is). Every cut carries a marker with the number of characters removed, so a
reader knows the text is not whole.
"""

from __future__ import annotations

from typing import Any, Literal

Keep = Literal["head", "tail", "both"]
TAIL_SHARE = 3  # "both" keeps a third of its room for the tail


def marker(cut: int, *, keep: Keep = "head") -> str:
    """The note that stands where text was cut (framed by newlines inside a text, with "both")."""
    return f"\n… [cut {cut:,} characters] …\n" if keep == "both" else f"… [cut {cut:,} characters]"


def clip(text: str, limit: int, *, keep: Keep = "head") -> str:
    """`text` if it has at most `limit` characters, else what `keep` says plus a marker; never over `limit`."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:  # the marker's own length depends on the number in it
        note = marker(cut, keep=keep)
        room = max(0, limit - len(note))
        if len(text) - room == cut:
            break
        cut = len(text) - room
    if room == 0:
        return text[:limit] if keep == "both" else note[:limit]
    if keep == "head":
        return text[:room] + note
    if keep == "tail":
        return note + text[len(text) - room :]
    tail = room // TAIL_SHARE
    head = room - tail
    return text[:head] + note + (text[len(text) - tail :] if tail else "")


def shown(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters: how a refused value is quoted back."""
    return clip(repr(value), limit)
