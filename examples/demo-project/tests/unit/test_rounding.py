import pytest
from calc.rounding import round_half_even, round_half_up


@pytest.mark.parametrize(("value", "expected"), [(0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-2.5, -2.0)])
def test_half_even(value: float, expected: float) -> None:
    assert round_half_even(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(0.5, 1.0), (2.5, 3.0), (-2.5, -3.0)])
def test_half_up(value: float, expected: float) -> None:
    assert round_half_up(value) == expected


def test_ndigits() -> None:
    assert round_half_up(1.005, ndigits=2) == 1.01
    assert round_half_even(1.005, ndigits=2) == 1.0
