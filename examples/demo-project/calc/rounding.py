"""Rounding with an explicit rule for ties.

Python's built-in :func:`round` rounds ties to the nearest even digit ("banker's
rounding"); :func:`round_half_up` gives the schoolbook rule instead.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal


def _round(value: float, ndigits: int, rule: str) -> float:
    step = Decimal(1).scaleb(-ndigits)
    return float(Decimal(str(value)).quantize(step, rounding=rule))


def round_half_even(value: float, ndigits: int = 0) -> float:
    """Round ``value`` to ``ndigits`` decimals, ties to the even neighbour.

    >>> round_half_even(2.5)
    2.0
    >>> round_half_even(3.5)
    4.0
    """
    return _round(value, ndigits, ROUND_HALF_EVEN)


def round_half_up(value: float, ndigits: int = 0) -> float:
    """Round ``value`` to ``ndigits`` decimals, ties away from zero.

    >>> round_half_up(2.5)
    3.0
    >>> round_half_up(1.234, ndigits=2)
    1.23
    """
    return _round(value, ndigits, ROUND_HALF_UP)
