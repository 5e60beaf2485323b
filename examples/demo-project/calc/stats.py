"""Descriptive statistics over any number of values."""

from __future__ import annotations

import math
from collections.abc import Iterable


def _values(values: Iterable[float]) -> list[float]:
    data = [float(v) for v in values]
    if not data:
        raise ValueError("at least one value is required")
    return data


def mean(*values: float) -> float:
    """Return the arithmetic mean of the values.

    >>> mean(1, 2, 3, 4)
    2.5
    """
    data = _values(values)
    return sum(data) / len(data)


def median(*values: float) -> float:
    """Return the middle value (the mean of the two middle values for an even count).

    >>> median(3, 1, 2)
    2.0
    """
    data = sorted(_values(values))
    middle = len(data) // 2
    if len(data) % 2:
        return data[middle]
    return (data[middle - 1] + data[middle]) / 2


def stdev(*values: float, sample: bool = False) -> float:
    """Return the standard deviation of the values.

    Args:
        values: the data points.
        sample: use the sample formula (divide by ``n - 1``) instead of the population one.

    Raises:
        ValueError: if there are no values, or only one with ``sample=True``.
    """
    data = _values(values)
    if sample and len(data) < 2:
        raise ValueError("a sample standard deviation needs at least two values")
    centre = sum(data) / len(data)
    squares = sum((x - centre) ** 2 for x in data)
    return math.sqrt(squares / (len(data) - 1 if sample else len(data)))
