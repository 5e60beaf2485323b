"""Evaluate arithmetic expressions such as ``"2 * (3 + 4)"`` without :func:`eval`.

The grammar is the usual one: ``+ -`` bind loosest, then ``* /``, then unary minus,
then ``^`` (right-associative power), then numbers and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from calc.ops import Number, add, divide, multiply, power, subtract

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|(.))")


class ExpressionError(ValueError):
    """The expression could not be parsed; ``position`` is the 0-based column."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at column {position}")
        self.position = position


@dataclass(frozen=True)
class Token:
    """One number or operator character with its column."""

    kind: str  # "number" or the operator character itself
    text: str
    position: int


class Evaluator:
    """A recursive-descent evaluator; one instance per expression.

    >>> Evaluator("1 + 2 * 3").value
    7
    """

    OPERATORS = "+-*/^()"

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._tokens = list(self.tokenize(expression))
        self._index = 0

    @classmethod
    def from_tokens(cls, *parts: str) -> Evaluator:
        """Build an evaluator from already separated pieces: ``from_tokens("2", "+", "3")``."""
        return cls(" ".join(parts))

    @staticmethod
    def tokenize(expression: str) -> Iterator[Token]:
        """Split ``expression`` into :class:`Token` objects, refusing unknown characters."""
        for match in _TOKEN.finditer(expression):
            number, other = match.groups()
            if number is not None:
                yield Token("number", number, match.start(1))
            elif other is not None:
                if other not in Evaluator.OPERATORS:
                    raise ExpressionError(f"unexpected character {other!r}", match.start(2))
                yield Token(other, other, match.start(2))

    @property
    def value(self) -> Number:
        """The value of the whole expression (parsed on first access)."""
        self._index = 0
        result = self._sum()
        if self._index < len(self._tokens):
            token = self._tokens[self._index]
            raise ExpressionError(f"unexpected {token.text!r}", token.position)
        return result

    def _peek(self) -> Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _take(self) -> Token:
        token = self._peek()
        if token is None:
            raise ExpressionError("unexpected end of expression", len(self.expression))
        self._index += 1
        return token

    def _sum(self) -> Number:
        result = self._product()
        while (token := self._peek()) is not None and token.kind in "+-":
            self._take()
            right = self._product()
            result = add(result, right) if token.kind == "+" else subtract(result, right)
        return result

    def _product(self) -> Number:
        result = self._unary()
        while (token := self._peek()) is not None and token.kind in "*/":
            self._take()
            right = self._unary()
            result = multiply(result, right) if token.kind == "*" else divide(result, right, exact=True)
        return result

    def _unary(self) -> Number:
        token = self._peek()
        if token is not None and token.kind == "-":
            self._take()
            return -self._unary()
        return self._power()

    def _power(self) -> Number:
        base = self._atom()
        token = self._peek()
        if token is not None and token.kind == "^":
            self._take()
            exponent = self._unary()
            if not isinstance(exponent, int):
                raise ExpressionError("exponent must be a whole number", token.position)
            return power(base, exponent)
        return base

    def _atom(self) -> Number:
        token = self._take()
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "(":
            result = self._sum()
            closing = self._take()
            if closing.kind != ")":
                raise ExpressionError("expected ')'", closing.position)
            return result
        raise ExpressionError(f"unexpected {token.text!r}", token.position)


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression.

    Raises:
        ExpressionError: if the expression is malformed.
        ZeroDivisionError: if it divides by zero.

    >>> evaluate("2 * (3 + 4)")
    14
    >>> evaluate("2 ^ 10 / 4")
    256
    """
    return Evaluator(expression).value
