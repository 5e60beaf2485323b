"""A small calculator package: arithmetic, statistics, rounding and expressions.

Everything is plain Python with type hints and no dependencies. The most common
functions are re-exported here:

>>> from calc import add, evaluate
>>> add(2, 3)
5
>>> evaluate("2 * (3 + 4)")
14
"""

from calc.expr import Evaluator, ExpressionError, evaluate
from calc.ops import add, divide, multiply, power, subtract
from calc.rounding import round_half_even, round_half_up
from calc.stats import mean, median, stdev

__all__ = [
    "Evaluator",
    "ExpressionError",
    "add",
    "divide",
    "evaluate",
    "mean",
    "median",
    "multiply",
    "power",
    "round_half_even",
    "round_half_up",
    "stdev",
    "subtract",
]

__version__ = "1.0.0"
