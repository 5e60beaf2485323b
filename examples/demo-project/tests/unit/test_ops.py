import pytest
from calc.ops import MAX_EXPONENT, add, divide, multiply, power, subtract


def test_add_integers() -> None:
    assert add(2, 3) == 5


def test_add_floats() -> None:
    assert add(0.5, 0.25) == pytest.approx(0.75)


def test_subtract() -> None:
    assert subtract(10, 4) == 6


def test_multiply() -> None:
    assert multiply(6, 7) == 42


def test_divide_gives_float() -> None:
    assert divide(7, 2) == 3.5


def test_divide_exact_gives_int() -> None:
    result = divide(6, 3, exact=True)
    assert result == 2
    assert isinstance(result, int)


def test_divide_by_zero() -> None:
    with pytest.raises(ZeroDivisionError, match="cannot divide by zero"):
        divide(1, 0)


def test_operands_are_positional_only() -> None:
    with pytest.raises(TypeError):
        add(a=1, b=2)  # type: ignore[call-arg]


@pytest.mark.parametrize(("base", "exponent", "expected"), [(3, 2, 9), (2, 10, 1024), (5, 0, 1)])
def test_power(base: int, exponent: int, expected: int) -> None:
    assert power(base, exponent) == expected


def test_power_defaults_to_square() -> None:
    assert power(4) == 16


def test_power_refuses_huge_exponents() -> None:
    with pytest.raises(ValueError, match="larger than"):
        power(2, MAX_EXPONENT + 1)
