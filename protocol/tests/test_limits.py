"""The size measure behind every 256 KiB limit, and what it says when it refuses."""

from __future__ import annotations

import pytest

from pm_protocol.limits import json_size


def test_size_is_the_compact_utf8_encoding() -> None:
    assert json_size({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert json_size("é") == len('"é"'.encode())


@pytest.mark.parametrize("value", [float("nan"), [float("inf")], {"x": -float("inf")}])
def test_nan_and_infinity_are_refused_as_not_json(value: object) -> None:
    with pytest.raises(ValueError, match="NaN or Infinity"):
        json_size(value)


def test_an_integer_too_long_to_write_is_named_as_such() -> None:
    with pytest.raises(ValueError, match="integer too long"):
        json_size({"n": 10**5000})
