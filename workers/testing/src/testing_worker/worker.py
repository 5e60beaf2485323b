"""The testing specialist: runs a project's test command in the project's own environment
and reports what failed.

Task payload (paths relative to the workspace)::

    {"path": "demo-project",                  # folder the command runs in (default ".")
     "command": "python -m pytest -q tests",  # default "python -m pytest -q"; argv, no shell
     "timeout_seconds": 300,                  # default 300
     "report": "reports/unit-tests.xml",      # JUnit report (default <project>/reports/<task id>.xml)
     "env": {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # extra environment variables (optional)
     "environment": "auto",                   # auto | build | worker | a venv folder
     "python": "3.12",                        # interpreter of a built environment
     "install": ["-e", ".[ci]"]}              # uv pip install arguments instead of the metadata's

``python`` and ``pytest`` in the command are the environment's (:mod:`testing_worker.selection`
decides which, :mod:`testing_worker.envbuild` builds and caches it). Any other key is refused
(see :mod:`testing_worker.payload`). pytest commands get ``--junitxml=<report>``; the report
is parsed and logged as a ``test_report`` artifact. Failing tests end the task as a blocker
naming them and their first assertion line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import os
import re
import stat
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path, PurePath
from typing import Any, TypeVar

import structlog

from pm_worker import Assignment, SettingsError, TaskBlocked, TaskContext, Worker, WorkerSettings, run
from pm_worker.clip import clip
from pm_worker.clip import shown as shown_value
from testing_worker.junit import CaseResult, JUnitError, JUnitReport, parse_junit
from testing_worker.payload import TestingPayload
from testing_worker.runner import CommandNotFound, RunResult, run_command
from testing_worker.runtime import TestEnvironment, map_python, split_command, worker_environment
from testing_worker.runtime import wants_pytest as is_pytest
from testing_worker.selection import select_environment
from testing_worker.settings import TestingSettings, load_testing_settings

log = structlog.get_logger("testing_worker")
T = TypeVar("T")

#: How often, at most, the tail of a long run's output goes into a progress report.
OUTPUT_REPORT_SECONDS = 5.0
#: Failing tests named in a blocker before "and N more".
BLOCKER_LIST_LIMIT = 10
#: Characters of the task's own command and path quoted in a message, and of one test id.
SHOWN_LIMIT = 300
ID_LIMIT = 300
#: Bytes of a ``test_report`` artifact's data (the stub stores at most 256 KiB), and of its
#: first failures with their messages.
REPORT_BUDGET = 200 * 1024
FAILURES_BUDGET = 48 * 1024
#: Largest JUnit report read (a run of tens of thousands of tests writes a few MB).
MAX_REPORT_BYTES = 64 << 20
_PYTEST_PERCENT = re.compile(r"\[\s*(\d{1,3})%\]\s*$")


class TestingWorker(Worker):
    """Runs test suites in the workspace and turns their JUnit reports into progress, artifacts and blockers."""

    __test__ = False  # not a pytest test class, whatever its name says

    role = "testing"
    name = "Testing Worker"
    skills = ("testing", "pytest", "unit-testing", "integration-testing")
    payload_model = TestingPayload

    def __init__(
        self, settings: WorkerSettings | None = None, testing: TestingSettings | None = None
    ) -> None:
        super().__init__(settings)
        self.testing = testing or load_testing_settings()

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        spec: TestingPayload = ctx.payload
        path_rel, command, timeout = spec.path, spec.command, spec.timeout_seconds
        cwd = ctx.resolve(path_rel)
        if not cwd.is_dir():
            raise TaskBlocked(
                f"payload.path {path_rel!r} is not a folder to run the tests in", severity="medium"
            )

        async def say(message: str) -> None:
            await ctx.progress(max(2.0, ctx.last_progress), message)

        words = split_command(command)
        report: Path | None = None
        if is_pytest(words):
            # before the environment is built: a report the worker may not write is a blocker
            # in a moment, not after minutes of installing
            report = self._report_path(task, ctx, spec, words, cwd)
            with contextlib.suppress(FileNotFoundError):
                report.unlink()  # never read a stale report from an earlier run (a link is removed, not followed)
            report.parent.mkdir(parents=True, exist_ok=True)
        install_watch = OutputWatch(label="installing", floor=3.0, span=0.0)
        environment = await self._reporting(
            ctx,
            install_watch,
            select_environment(ctx, spec, self.testing, cwd, words, say, install_watch.feed),
        )
        argv = environment.command(words)
        if report is not None:
            argv = add_junit(argv, report)

        # what messages quote of the task's own text: bounded, so a blocker always fits
        shown, path_rel = clip(command, SHOWN_LIMIT), clip(path_rel, SHOWN_LIMIT)
        await ctx.progress(
            max(5.0, ctx.last_progress),
            f"Running {shown} in {path_rel} (timeout {timeout:g} s) with {environment.description}",
        )
        bound = log.bind(task_id=task.task_id, path=path_rel, environment=environment.kind)
        bound.info("test_command_started", argv=[clip(a, 200) for a in argv[:20]], python=environment.python)
        result = await self._run(ctx, argv, cwd, timeout, environment.variables(spec.env))
        bound.info(
            "test_command_finished",
            exit_code=result.returncode,
            timed_out=result.timed_out,
            seconds=round(result.duration, 3),
        )

        if result.timed_out:
            raise TaskBlocked(
                f"test command timed out after {timeout:g} s in {path_rel}: {shown} was stopped "
                f"(process group killed); last output: {_last_line(result)}",
                severity="high",
            )
        if report is None:
            return self._plain_outcome(result, shown, path_rel)
        try:
            parsed = await asyncio.to_thread(read_report, report, ctx.workspace, cwd)
        except JUnitError as exc:
            raise TaskBlocked(
                f"{shown} in {path_rel} exited with code {result.returncode} and wrote no readable JUnit report "
                f"({exc}); last output:\n{result.tail_text(15)}",
                severity="high",
            ) from exc

        counts = parsed.summary()
        bound.info("test_report_read", **parsed.counts())
        await ctx.progress(90, f"{counts} in {path_rel} ({result.duration:.1f} s)")
        await ctx.artifact(
            "test_report",
            f"JUnit report of {shown} in {path_rel}: {counts}",
            location=ctx.relative(report),
            data=report_data(parsed, result, path_rel, shown, environment),
        )
        if not parsed.ok:
            raise TaskBlocked(blocker_text(parsed, path_rel), severity="high")
        if parsed.total == 0:
            raise TaskBlocked(
                f"no tests ran in {path_rel}: {shown} collected nothing (exit code {result.returncode}); "
                "check payload.path and the test file names",
                severity="medium",
            )
        if result.returncode != 0:
            raise TaskBlocked(
                f"{shown} in {path_rel} exited with code {result.returncode} although no test failed ({counts}); "
                f"last output:\n{result.tail_text(15)}",
                severity="medium",
            )
        return f"{counts} in {path_rel} ({result.duration:.1f} s); report {ctx.relative(report)}"

    # -- pieces ----------------------------------------------------------------------

    @staticmethod
    def _report_path(
        task: Assignment, ctx: TaskContext, spec: TestingPayload, argv: Sequence[str], cwd: Path
    ) -> Path:
        own = existing_junit(argv)
        if own is not None:  # the command names its own report: read that one, if it is ours to read
            target = (cwd / own).resolve()
            if not is_inside(target, ctx.workspace):
                raise TaskBlocked(
                    f"payload.command writes its JUnit report to {shown_value(own, 200)}, outside the workspace "
                    f"{ctx.workspace}: the worker neither deletes nor reads files there. Drop --junitxml (the "
                    "worker asks pytest for its own report) or name a file inside the workspace",
                    severity="high",
                )
            return target
        if spec.report is not None:
            return ctx.resolve(spec.report, must_exist=False)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", task.task_id).strip("._") or "tests"
        project = ctx.in_project(spec.path, f"reports/{safe}.xml")
        return ctx.resolve(project, must_exist=False)

    @classmethod
    async def _run(
        cls, ctx: TaskContext, argv: list[str], cwd: Path, timeout: float, env: dict[str, str]
    ) -> RunResult:
        """Run the command; every few seconds put the newest output line into a progress report."""
        watch = OutputWatch()
        try:
            return await cls._reporting(
                ctx, watch, run_command(argv, cwd, timeout=timeout, env=env, on_line=watch.feed)
            )
        except CommandNotFound as exc:
            raise TaskBlocked(f"{exc}; check payload.command", severity="high") from exc

    @staticmethod
    async def _reporting(ctx: TaskContext, watch: OutputWatch, work: Awaitable[T]) -> T:
        """Await ``work``; meanwhile, every few seconds, the newest line ``watch`` saw goes into a progress report."""

        async def reporter() -> None:
            while True:
                await asyncio.sleep(OUTPUT_REPORT_SECONDS)
                update = watch.take()
                if update is not None:
                    await ctx.progress(max(update[0], ctx.last_progress), update[1])

        progress = asyncio.create_task(reporter(), name="test-output-progress")
        try:
            return await work
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress

    @staticmethod
    def _plain_outcome(result: RunResult, shown: str, path_rel: str) -> str:
        """A command that writes no JUnit report: its exit code decides."""
        if result.returncode != 0:
            raise TaskBlocked(
                f"test command failed in {path_rel}: {shown} exited with code {result.returncode}; "
                f"last output:\n{result.tail_text(15)}",
                severity="high",
            )
        return f"{shown} passed in {path_rel} (exit code 0, {result.duration:.1f} s): {_last_line(result)}"


# -- helpers (pure, tested on their own) ------------------------------------------


class OutputWatch:
    """The newest line of a running command and pytest's ``[ 45%]`` counter, for progress reports.

    Progress is ``floor + span * percent / 100`` (``floor`` until a percentage shows): the test
    run spans 10-90 %, an installation stays at its ``floor`` (it has no counter)."""

    def __init__(self, label: str = "running", floor: float = 10.0, span: float = 80.0) -> None:
        self.label, self.floor, self.span = label, floor, span
        self.line = ""
        self.percent: int | None = None
        self._fresh = False

    def feed(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        self.line, self._fresh = text, True
        match = _PYTEST_PERCENT.search(text)
        if match:
            self.percent = min(100, int(match.group(1)))

    def take(self) -> tuple[float, str] | None:
        """``(progress, message)`` if there was new output since the last call, else None."""
        if not self._fresh:
            return None
        self._fresh = False
        value = self.floor + self.span * self.percent / 100 if self.percent is not None else self.floor
        return value, f"{self.label}: {self.line[-300:]}"


def build_argv(command: str, python: str = sys.executable) -> list[str]:
    """Split the command like a shell would (but run no shell); ``python`` is ``python``.

    A bare ``pytest`` becomes ``<python> -m pytest`` so it does not depend on ``PATH``.
    """
    return map_python(split_command(command), python)


def existing_junit(argv: Sequence[str]) -> str | None:
    """The report path the command already asks for (``--junitxml=x`` / ``--junitxml x``)."""
    for index, arg in enumerate(argv):
        for flag in ("--junitxml", "--junit-xml"):
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
            if arg == flag and index + 1 < len(argv):
                return argv[index + 1]
    return None


def add_junit(argv: list[str], report: Path) -> list[str]:
    """Ask pytest for a JUnit report (``xunit1``, whose test cases carry their file and line).

    The options go right after ``pytest`` so they come before any ``--`` in the command.
    """
    extra = ["-o", "junit_family=xunit1"]
    if existing_junit(argv) is None:
        extra.insert(0, f"--junitxml={report}")
    if PurePath(argv[0]).name in ("pytest", "py.test"):
        at = 1
    else:
        at = next(
            i + 2
            for i, (a, b) in enumerate(itertools.pairwise(argv))
            if a == "-m" and b in ("pytest", "py.test")
        )
    return [*argv[:at], *extra, *argv[at:]]


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment minus its secrets, plus ``extra`` (``environment: worker``)."""
    return worker_environment().variables(extra)


def failure_line(case: CaseResult) -> str:
    test_id = clip(case.test_id, ID_LIMIT)
    return f"{test_id} — {case.message}" if case.message else test_id


def blocker_text(report: JUnitReport, where: str) -> str:
    """``2 of 14 tests failed in calc: tests/test_ops.py::test_divide — assert 2.5 == 3; ...``"""
    failing = report.failing
    bad = len(failing)
    verb = "failed" if report.errors == 0 else ("errored" if report.failed == 0 else "failed or errored")
    listed = "; ".join(failure_line(case) for case in failing[:BLOCKER_LIST_LIMIT])
    more = f"; and {bad - BLOCKER_LIST_LIMIT} more" if bad > BLOCKER_LIST_LIMIT else ""
    text = f"{bad} of {report.total} tests {verb} in {where}: {listed}{more}"
    return clip(text, 9000)


def report_data(
    report: JUnitReport,
    result: RunResult,
    path: str,
    command: str,
    environment: TestEnvironment | None = None,
) -> dict[str, Any]:
    """What the ``test_report`` artifact carries for the tasks that depend on this one.

    The counts are exact; the lists of failing tests are cut to fit the artifact in
    :data:`REPORT_BUDGET` bytes (``failing_not_listed`` counts the ids left out), so 6,000
    failing tests still give a report the stub stores."""
    failing = [clip(case.test_id, ID_LIMIT) for case in report.failing]
    failures = [
        {"id": clip(c.test_id, ID_LIMIT), "outcome": c.outcome, "message": c.message}
        for c in report.failing[:100]
    ]
    data: dict[str, Any] = {
        **report.counts(),
        "failing": [],
        "failures": _fitting(failures, FAILURES_BUDGET),
        "path": path,
        "command": command,
        "exit_code": result.returncode,
        "duration_seconds": round(result.duration, 3),
    }
    if environment is not None:
        data["environment"] = environment.summary()
    data["failing_not_listed"] = len(failing)  # its room is kept while the list is filled
    data["failing"] = _fitting(failing, REPORT_BUDGET - _json_bytes(data))
    data["failing_not_listed"] = len(failing) - len(data["failing"])
    if not data["failing_not_listed"]:
        del data["failing_not_listed"]
    return data


def _fitting(items: list[Any], budget: int) -> list[Any]:
    """The first ``items`` whose JSON fits in ``budget`` bytes as list elements."""
    kept, used = [], 0
    for item in items:
        used += _json_bytes(item) + 1
        if used > budget:
            break
        kept.append(item)
    return kept


def _json_bytes(value: Any) -> int:
    """Size as the stub measures it (compact JSON, UTF-8)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def read_report(report: Path, workspace: Path, cwd: Path) -> JUnitReport:
    """Parse the JUnit report at ``report`` without following a link to it, only if what is opened
    lies in the workspace, and only up to :data:`MAX_REPORT_BYTES` (the test command wrote it)."""
    try:
        fd = os.open(report, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise JUnitError(f"no JUnit report at {report}") from None
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise JUnitError(f"cannot open the JUnit report {report}: {why}") from None
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise JUnitError(f"the JUnit report {report} is not a regular file")
        try:
            opened = Path(os.readlink(f"/proc/self/fd/{fd}"))  # what the kernel opened, after any swap
        except OSError:  # no /proc: the path as checked, its last component not a link
            opened = report
        if not is_inside(opened, workspace):
            raise JUnitError(f"the JUnit report {report} lies outside the workspace after the run; not read")
        if st.st_size > MAX_REPORT_BYTES:
            raise JUnitError(
                f"the JUnit report is {st.st_size:,} bytes, over the {MAX_REPORT_BYTES:,} bytes "
                "the worker reads"
            )
        data = file.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise JUnitError(f"the JUnit report grew over the {MAX_REPORT_BYTES:,} bytes the worker reads")
    return parse_junit(data, cwd)


def is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _last_line(result: RunResult) -> str:
    for line in reversed(result.tail):
        if line.strip():
            return line.strip()
    return "(no output)"


def main() -> None:
    """`python -m testing_worker`: the TESTING_* settings first (one line and exit 2 if bad), then `pm_worker.run`."""
    if not {"--check", "-h", "--help"} & set(sys.argv[1:]):
        try:
            load_testing_settings()
        except SettingsError as exc:
            print(f"python -m testing_worker: {exc}", file=sys.stderr)
            sys.exit(2)
    run(TestingWorker)
