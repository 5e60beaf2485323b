import math

import pytest
from calc.stats import mean, median, stdev


def test_mean() -> None:
    assert mean(1, 2, 3, 4) == 2.5


def test_median_odd_and_even() -> None:
    assert median(3, 1, 2) == 2
    assert median(4, 1, 3, 2) == 2.5


def test_population_and_sample_stdev() -> None:
    assert stdev(2, 4, 4, 4, 5, 5, 7, 9) == 2.0
    assert stdev(1, 2, 3, 4, sample=True) == pytest.approx(math.sqrt(5 / 3))


def test_no_values() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mean()


def test_sample_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least two"):
        stdev(1, sample=True)
