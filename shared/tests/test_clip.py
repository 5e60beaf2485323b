"""pm_worker.clip: never over the limit, and the marker says how much was cut."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pm_worker.clip import clip, shown


@given(
    text=st.text(max_size=3000),
    limit=st.integers(min_value=0, max_value=2000),
    keep=st.sampled_from(["head", "tail", "both"]),
)
def test_never_over_the_limit_and_says_how_much_was_cut(text: str, limit: int, keep: str) -> None:
    out = clip(text, limit, keep=keep)  # type: ignore[arg-type]
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
    elif limit >= 40:
        note = r"\n… \[cut ([\d,]+) characters\] …\n" if keep == "both" else r"… \[cut ([\d,]+) characters\]"
        match = re.search(note, out)
        assert match
        kept = len(out) - len(match.group(0))
        assert int(match.group(1).replace(",", "")) == len(text) - kept
        head, tail = out[: match.start()], out[match.end() :]
        assert text.startswith(head)
        assert text.endswith(tail)
        if keep == "head":
            assert tail == ""
        if keep == "tail":
            assert head == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        ("E" * 100, "'" + "E" * 58 + "… [cut 43 characters]"),
    ],
)
def test_shown_quotes_a_value_cut(value: str, expected: str) -> None:
    assert shown(value) == expected
