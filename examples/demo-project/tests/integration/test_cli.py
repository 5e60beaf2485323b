"""The command line, run as a real process (the way the Docker image runs it)."""

import subprocess
import sys
from pathlib import Path

import pytest
from calc.cli import main

PROJECT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "calc", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_add_prints_5() -> None:
    result = run_cli("add", "2", "3")
    assert result.returncode == 0
    assert result.stdout == "5\n"


def test_eval() -> None:
    assert run_cli("eval", "2 * (3 + 4)").stdout == "14\n"


def test_division_by_zero_is_an_error() -> None:
    result = run_cli("div", "1", "0")
    assert result.returncode == 1
    assert "cannot divide by zero" in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"), [(["div", "7", "2"], "3.5"), (["mean", "1", "2", "3", "4"], "2.5")]
)
def test_main_in_process(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == expected
