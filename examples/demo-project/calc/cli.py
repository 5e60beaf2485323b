"""The ``python -m calc`` command line.

Usage::

    python -m calc add 2 3          # prints 5
    python -m calc div 7 2          # prints 3.5
    python -m calc mean 1 2 3 4     # prints 2.5
    python -m calc eval "2 * (3 + 4)"
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from calc import ops, stats
from calc.expr import ExpressionError, evaluate
from calc.ops import Number

BINARY: dict[str, Callable[[Number, Number], Number]] = {
    "add": ops.add,
    "sub": ops.subtract,
    "mul": ops.multiply,
    "div": ops.divide,
}
VARIADIC: dict[str, Callable[..., float]] = {"mean": stats.mean, "median": stats.median, "stdev": stats.stdev}


def parse_number(text: str) -> Number:
    """Read ``"3"`` as ``3`` and ``"3.5"`` as ``3.5``."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def format_number(value: Number) -> str:
    """Print whole numbers without a trailing ``.0``.

    >>> format_number(5.0)
    '5'
    >>> format_number(2.5)
    '2.5'
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per operation."""
    parser = argparse.ArgumentParser(prog="python -m calc", description="A small calculator.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in BINARY:
        cmd = sub.add_parser(name, help=f"{name} two numbers")
        cmd.add_argument("a", type=parse_number)
        cmd.add_argument("b", type=parse_number)
    for name in VARIADIC:
        cmd = sub.add_parser(name, help=f"{name} of the numbers")
        cmd.add_argument("values", type=parse_number, nargs="+")
    cmd = sub.add_parser("eval", help="evaluate an expression")
    cmd.add_argument("expression")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success, 1 on a calculation error)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command in BINARY:
            result = BINARY[args.command](args.a, args.b)
        elif args.command in VARIADIC:
            result = VARIADIC[args.command](*args.values)
        else:
            result = evaluate(args.expression)
    except (ArithmeticError, ExpressionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_number(result))
    return 0
