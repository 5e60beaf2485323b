"""Arithmetic on two numbers.

The operands are positional-only, so ``add(2, 3)`` works and ``add(a=2, b=3)`` does not.
Results that are whole numbers stay integers when both operands are integers.
"""

from __future__ import annotations

Number = int | float

#: Exponents above this are refused by :func:`power` to keep results small.
MAX_EXPONENT: int = 1000


def add(a: Number, b: Number, /) -> Number:
    """Return the sum of ``a`` and ``b``.

    >>> add(2, 3)
    5
    >>> add(0.5, 0.25)
    0.75
    """
    return a + b


def subtract(a: Number, b: Number, /) -> Number:
    """Return ``a`` minus ``b``.

    >>> subtract(10, 4)
    6
    """
    return a - b


def multiply(a: Number, b: Number, /) -> Number:
    """Return the product of ``a`` and ``b``."""
    return a * b


def divide(a: Number, b: Number, /, *, exact: bool = False) -> Number:
    """Divide ``a`` by ``b``.

    Args:
        a: the dividend.
        b: the divisor; must not be zero.
        exact: return an ``int`` when the division has no remainder.

    Returns:
        The quotient, a ``float`` unless ``exact`` is set and it is whole.

    Raises:
        ZeroDivisionError: if ``b`` is zero.

    >>> divide(7, 2)
    3.5
    >>> divide(6, 3, exact=True)
    2
    """
    if b == 0:
        raise ZeroDivisionError("cannot divide by zero")
    quotient = a / b
    if exact and quotient.is_integer():
        return int(quotient)
    return quotient


def power(base: Number, exponent: int = 2) -> Number:
    """Raise ``base`` to an integer ``exponent`` (squares by default).

    Raises:
        ValueError: if ``exponent`` is larger than :data:`MAX_EXPONENT`.
    """
    if exponent > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent} is larger than {MAX_EXPONENT}")
    result: Number = base**exponent
    return result
