"""Read JUnit XML test reports (as pytest and most other runners write them).

Counts passed / failed / skipped / errors per ``<testcase>``, and for every failing test
gives a pytest-style id (``tests/test_ops.py::TestDiv::test_zero``) and the first line
worth reading (``assert 2.5 == 3``, ``ModuleNotFoundError: No module named 'x'``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["CaseResult", "JUnitError", "JUnitReport", "first_error_line", "node_id", "parse_junit"]

#: Longest first-line message kept per failure.
MESSAGE_LIMIT = 300


class JUnitError(Exception):
    """The report is missing or is not JUnit XML."""


@dataclass(frozen=True)
class CaseResult:
    """One ``<testcase>``: its id, outcome and (for failures, errors and skips) the first line of why."""

    test_id: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    time: float = 0.0
    file: str | None = None
    line: int | None = None  # as the report gives it (pytest: the 0-based line of the test's def)


@dataclass(frozen=True)
class JUnitReport:
    """All test cases of a report, with the counts a worker reports."""

    cases: tuple[CaseResult, ...] = ()
    time: float = 0.0
    suite_counts: dict[str, int] = field(default_factory=dict)  # used only when there are no <testcase>s

    def _count(self, outcome: str) -> int:
        if not self.cases and self.suite_counts:
            return self.suite_counts.get(outcome, 0)
        return sum(1 for case in self.cases if case.outcome == outcome)

    @property
    def passed(self) -> int:
        return self._count("passed")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def errors(self) -> int:
        return self._count("error")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def failing(self) -> list[CaseResult]:
        """Failed and errored cases, in report order."""
        return [case for case in self.cases if case.outcome in ("failed", "error")]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0

    def counts(self) -> dict[str, int]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors": self.errors,
            "total": self.total,
        }

    def summary(self) -> str:
        """``12 passed, 2 failed, 1 skipped, 0 errors``."""
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped, {self.errors} errors"


def parse_junit(source: Path | str | bytes, root: Path | None = None) -> JUnitReport:
    """Parse a JUnit XML report from a file path or from its bytes.

    ``root`` is the folder the tests ran in; with it, ids of reports that carry no ``file``
    attribute (pytest's default ``xunit2`` family) are mapped back to real ``.py`` files.
    """
    try:
        top = ET.fromstring(source) if isinstance(source, bytes) else ET.parse(source).getroot()
    except FileNotFoundError as exc:
        raise JUnitError(f"no JUnit report at {exc.filename}") from exc
    except (ET.ParseError, OSError) as exc:
        raise JUnitError(f"cannot read the JUnit report: {exc}") from exc
    if top.tag not in ("testsuites", "testsuite"):
        raise JUnitError(
            f"not a JUnit report: the root element is <{top.tag}>, not <testsuites> or <testsuite>"
        )
    suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
    cases = tuple(_case(case, root) for suite in suites for case in suite.findall("testcase"))
    time = _float(top.get("time")) or sum(_float(s.get("time")) for s in suites)
    suite_counts: dict[str, int] = {}
    if not cases:
        tests = sum(_int(s.get("tests")) for s in suites)
        failures = sum(_int(s.get("failures")) for s in suites)
        errors = sum(_int(s.get("errors")) for s in suites)
        skipped = sum(_int(s.get("skipped") or s.get("skips")) for s in suites)
        suite_counts = {
            "failed": failures,
            "error": errors,
            "skipped": skipped,
            "passed": max(0, tests - failures - errors - skipped),
        }
    return JUnitReport(cases=cases, time=time, suite_counts=suite_counts)


def _case(element: ET.Element, root: Path | None) -> CaseResult:
    file = element.get("file")
    line = element.get("line")
    outcome, message = "passed", ""
    for tag, kind in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
        child = element.find(tag)
        if child is not None:
            outcome = kind
            message = first_error_line(child.get("message"), child.text)
            break
    return CaseResult(
        test_id=node_id(element.get("classname") or "", element.get("name") or "?", file, root),
        outcome=outcome,
        message=message,
        time=_float(element.get("time")),
        file=file,
        line=int(line) if line and line.isdigit() else None,
    )


def first_error_line(message: str | None, text: str | None) -> str:
    """The line a reader wants first.

    pytest's long report marks the exception lines with ``E``; the first of them is the
    failing assertion (``assert 2.5 == 3``) or the error (``KeyError: 'k'``). Without
    them, the first non-empty line of the ``message`` attribute, then of the text.
    """
    for line in (text or "").splitlines():
        if line.startswith("E ") and line[1:].strip():
            return _limit(line[1:].strip())
    for candidate in (message, text):
        for line in (candidate or "").splitlines():
            if line.strip():
                return _limit(line.strip())
    return ""


def _limit(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def node_id(classname: str, name: str, file: str | None = None, root: Path | None = None) -> str:
    """A pytest-style node id from JUnit's ``classname`` / ``name`` / ``file``.

    >>> node_id("tests.test_ops.TestDiv", "test_zero", "tests/test_ops.py")
    'tests/test_ops.py::TestDiv::test_zero'
    >>> node_id("tests.test_ops", "test_add")
    'tests/test_ops.py::test_add'
    """
    parts = [p for p in classname.split(".") if p]
    if file:
        if not parts:  # a collection error: the "test" is the file itself
            return file
        module = PurePosixPath(file.replace("\\", "/")).with_suffix("").parts
        if tuple(parts[: len(module)]) == module:
            classes = parts[len(module) :]
        else:  # classname does not mirror the file (unusual): keep the Capitalised segments
            classes = [p for p in parts if p[:1].isupper()]
        return "::".join([file, *classes, name])
    if not parts:
        return name
    split = _module_split(parts, root)
    path = "/".join(parts[:split]) + ".py"
    return "::".join([path, *parts[split:], name])


def _module_split(parts: list[str], root: Path | None) -> int:
    """How many leading segments of ``classname`` name the module file."""
    if root is not None:
        for cut in range(len(parts), 0, -1):
            if root.joinpath(*parts[: cut - 1], parts[cut - 1] + ".py").is_file():
                return cut
    # No file system to ask: classes are the trailing Capitalised segments.
    cut = len(parts)
    while cut > 1 and parts[cut - 1][:1].isupper():
        cut -= 1
    return cut


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0
