"""pm_worker.clip: never over the limit, and the marker says how much was cut."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pm_worker.clip import clip, shown


@given(text=st.text(max_size=3000), limit=st.integers(min_value=0, max_value=2000),
       keep=st.sampled_from(["head", "tail"]))
def test_never_over_the_limit_and_says_how_much_was_cut(text: str, limit: int, keep: str) -> None:
    out = clip(text, limit, keep=keep)  # type: ignore[arg-type]
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
    elif limit >= 40:
        match = re.search(r"… \[cut ([\d,]+) characters\]", out)
        assert match
        kept = len(out) - len(match.group(0))
        assert int(match.group(1).replace(",", "")) == len(text) - kept
        assert out.startswith(text[:kept]) if keep == "head" else out.endswith(text[len(text) - kept:])


@pytest.mark.parametrize(("value", "expected"), [
    ("short", "'short'"),
    ("E" * 100, "'" + "E" * 58 + "… [cut 43 characters]"),
])
def test_shown_quotes_a_value_cut(value: str, expected: str) -> None:
    assert shown(value) == expected
