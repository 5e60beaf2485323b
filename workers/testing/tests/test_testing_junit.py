"""JUnit parsing, on reports the real pytest wrote for the fixture suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing_worker.junit import JUnitError, first_error_line, node_id, parse_junit


def test_failing_suite_counts_and_ids(real_reports: dict[str, Path]) -> None:
    report = parse_junit(real_reports["failing_xunit1"])
    assert report.counts() == {"passed": 1, "failed": 2, "skipped": 0, "errors": 1, "total": 4}
    assert not report.ok
    assert [(c.test_id, c.outcome, c.message) for c in report.failing] == [
        ("failing/test_mathlib_bad.py::test_divide_rounds", "failed", "assert 2.5 == 3"),
        (
            "failing/test_mathlib_bad.py::TestMean::test_empty",
            "failed",
            "ZeroDivisionError: division by zero",
        ),
        (
            "failing/test_mathlib_bad.py::test_needs_database",
            "error",
            "ConnectionError: database unavailable",
        ),
    ]
    assert report.failing[0].file == "failing/test_mathlib_bad.py"
    # pytest writes the 0-based line of the test's def
    source = (real_reports["project"] / "failing" / "test_mathlib_bad.py").read_text().splitlines()
    assert report.failing[0].line == source.index("def test_divide_rounds() -> None:")
    assert report.summary() == "1 passed, 2 failed, 0 skipped, 1 errors"


def test_default_xunit2_report_maps_ids_back_to_files(real_reports: dict[str, Path]) -> None:
    # pytest's default family has no file attribute: the ids come from classname + the file system
    report = parse_junit(real_reports["failing_xunit2"], root=real_reports["project"])
    assert [c.test_id for c in report.failing] == [
        "failing/test_mathlib_bad.py::test_divide_rounds",
        "failing/test_mathlib_bad.py::TestMean::test_empty",
        "failing/test_mathlib_bad.py::test_needs_database",
    ]


def test_passing_suite_with_skips_and_parametrized_class(real_reports: dict[str, Path]) -> None:
    report = parse_junit(real_reports["passing_xunit1"])
    assert report.counts() == {"passed": 4, "failed": 0, "skipped": 1, "errors": 0, "total": 5}
    assert report.ok
    assert report.failing == []
    ids = [c.test_id for c in report.cases]
    assert "tests/test_mathlib.py::TestDivide::test_values[1-4-0.25]" in ids
    skipped = next(c for c in report.cases if c.outcome == "skipped")
    assert (skipped.test_id, skipped.message) == ("tests/test_mathlib.py::test_median", "not supported yet")


def test_collection_error_is_an_error_naming_the_file(real_reports: dict[str, Path]) -> None:
    report = parse_junit(real_reports["collect_error"])
    assert report.errors == 1
    [case] = report.failing
    assert case.test_id == "collect_error/test_import.py"
    assert case.message == "ModuleNotFoundError: No module named 'not_a_module_anywhere'"


def test_report_from_bytes_with_a_single_testsuite_root() -> None:
    xml = b"""<testsuite name="other-runner" tests="3">
      <testcase classname="pkg.test_mod.TestThing" name="test_a" time="0.5"/>
      <testcase classname="pkg.test_mod.TestThing" name="test_b"><failure message="expected 1&#10;got 2"/></testcase>
      <testcase classname="pkg.test_mod" name="test_c"><skipped/></testcase>
    </testsuite>"""
    report = parse_junit(xml)
    assert report.counts() == {"passed": 1, "failed": 1, "skipped": 1, "errors": 0, "total": 3}
    # no file system to ask: trailing Capitalised segments are classes
    assert [(c.test_id, c.message) for c in report.failing] == [
        ("pkg/test_mod.py::TestThing::test_b", "expected 1")
    ]
    assert report.cases[0].time == 0.5


def test_suite_level_counts_when_there_are_no_testcases() -> None:
    report = parse_junit(
        b'<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1"/></testsuites>'
    )
    assert report.counts() == {"passed": 2, "failed": 1, "skipped": 1, "errors": 1, "total": 5}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<testsuites><testsuite>", "cannot read the JUnit report"),
        (b"<html><body>502</body></html>", "root element is <html>"),
        (b"", "cannot read the JUnit report"),
    ],
)
def test_bad_reports(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "r.xml"
    path.write_bytes(content)
    with pytest.raises(JUnitError, match=problem):
        parse_junit(path)


def test_missing_report(tmp_path: Path) -> None:
    with pytest.raises(JUnitError, match="no JUnit report at"):
        parse_junit(tmp_path / "nothing.xml")


@pytest.mark.parametrize(
    ("message", "text", "expected"),
    [
        (
            "assert 2 == 3\n +  where 2 = f()",
            "def test():\n>   assert f() == 3\nE   assert 2 == 3\nE    +  where",
            "assert 2 == 3",
        ),
        ("collection failure", "Traceback:\n...\nE   ImportError: no x", "ImportError: no x"),
        ("KeyError: 'k'", None, "KeyError: 'k'"),
        (None, "\n\n  boom happened\nmore", "boom happened"),
        (None, None, ""),
        ("x" * 1000, None, "x" * 297 + "..."),
    ],
)
def test_first_error_line(message: str | None, text: str | None, expected: str) -> None:
    assert first_error_line(message, text) == expected


def test_node_id_forms(tmp_path: Path) -> None:
    assert node_id("a.b.test_m.TestX", "test_y", "a/b/test_m.py") == "a/b/test_m.py::TestX::test_y"
    assert node_id("", "test_c", "test_c.py") == "test_c.py"
    assert node_id("", "bare") == "bare"
    # with a root, the module file found on disk decides where the classes start
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "checks.py").write_text("")
    assert (
        node_id("suite.checks.lower_case_class", "test_z", root=tmp_path)
        == "suite/checks.py::lower_case_class::test_z"
    )
