"""Expectations carried over from the old calculator, which rounded ties up.

calc.round_half_even rounds ties to the even neighbour, so one of these is wrong on
purpose: this suite is the demo board's deliberately failing test task.
"""

from calc.ops import add, divide
from calc.rounding import round_half_even


def test_legacy_add() -> None:
    assert add(2, 2) == 4


def test_legacy_divide() -> None:
    assert divide(9, 3, exact=True) == 3


def test_legacy_rounds_ties_up() -> None:
    assert round_half_even(2.5) == 3
