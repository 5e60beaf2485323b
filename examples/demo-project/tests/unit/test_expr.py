import pytest
from calc.expr import Evaluator, ExpressionError, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("2 * (3 + 4)", 14),
        ("-2 ^ 2", -4),
        ("2 ^ 3 ^ 2", 512),
        ("7 / 2", 3.5),
        ("1.5 + .5", 2.0),
    ],
)
def test_evaluate(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


def test_tokens_have_positions() -> None:
    tokens = list(Evaluator.tokenize("12 + 3"))
    assert [(t.kind, t.text, t.position) for t in tokens] == [
        ("number", "12", 0),
        ("+", "+", 3),
        ("number", "3", 5),
    ]


def test_from_tokens() -> None:
    assert Evaluator.from_tokens("2", "+", "3").value == 5


@pytest.mark.parametrize(("expression", "column"), [("2 + x", 4), ("(1 + 2", 6), ("1 2", 2)])
def test_errors_name_the_column(expression: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expression)
    assert info.value.position == column
