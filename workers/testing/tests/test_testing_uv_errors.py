"""Naming what failed from uv's output (the lines are uv 0.13's own, run with NO_COLOR)."""

from __future__ import annotations

import os

import pytest

from testing_worker.uv_errors import headline, summary

MISSING = """Using Python 3.11.7 environment at: /tmp/env
error: No solution found when resolving dependencies
  cause: Because nonexistent-pkg-h25xyz was not found in the package registry and you require nonexistent-pkg-h25xyz, we can conclude that your requirements are unsatisfiable."""
NO_VERSION = """error: No solution found when resolving dependencies
  cause: Because there is no version of pytest==99.1 and you require pytest==99.1, we can conclude that your requirements are unsatisfiable."""
DNS = """error: Request failed after 3 retries in 8.1s
  cause: Failed to fetch: https://pypi.invalid/simple/requests/
  cause: error sending request for url (https://pypi.invalid/simple/requests/)
  cause: client error (Connect)
  cause: dns error
  cause: failed to lookup address information: Name or service not known"""
REFUSED = """error: Request failed after 3 retries in 8.8s
  cause: Failed to fetch: http://127.0.0.1:9/simple/requests/
  cause: tcp connect error
  cause: Connection refused (os error 111)"""
BUILD = """Resolved 1 package in 3ms
error: Failed to build `broken @ file:///work/broken`
  cause: The build backend returned an error
  cause: Call to `setuptools.build_meta.build_wheel` failed (exit status: 1)
  hint: This usually indicates a problem with the package or the build environment."""
WRAPPED = """error: No solution found when resolving dependencies
  cause: Because this-is-never-installed-h25 was not found in the package
         registry and greet[docs] depends on this-is-never-installed-h25, we can
         conclude that greet[docs]'s requirements are unsatisfiable."""
DENIED = """error: Failed to build `humanize @ file:///workspace/real/humanize-4.17.0`
  cause: The build backend returned an error
  cause: Call to `hatchling.build.build_editable` failed (exit status: 1)

         [stderr]
         Traceback (most recent call last):
           File "<string>", line 11, in <module>
         PermissionError: [Errno 13] Permission denied: '/workspace/real/humanize-4.17.0/src/humanize/_version.py'"""
LOCK = """error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided. To update the lockfile, run `uv lock`."""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (MISSING, "package 'nonexistent-pkg-h25xyz' was not found on the index"),
        (WRAPPED, "package 'this-is-never-installed-h25' was not found on the index"),
        (NO_VERSION, "no version pytest==99.1 exists on the index"),
        (DNS, "the index could not be reached (https://pypi.invalid/simple/requests/)"),
        (REFUSED, "the index could not be reached (http://127.0.0.1:9/simple/requests/)"),
        (BUILD, "broken @ file:///work/broken failed to build"),
        (
            DENIED,
            f"uid {os.getuid()} cannot write /workspace/real/humanize-4.17.0/src/humanize/_version.py while building "
            f"the project (permission denied): give uid {os.getuid()} write access to the project's folder, or run "
            "the fleet as the folder's owner",
        ),
        (LOCK, "uv.lock is out of date with pyproject.toml (run `uv lock` in the project)"),
        ("something uv never says", None),
    ],
)
def test_headline_names_the_package_or_the_index(output: str, expected: str | None) -> None:
    assert headline(output.splitlines()) == expected


def test_summary_is_the_error_and_its_causes_on_one_line() -> None:
    assert summary(DNS.splitlines()) == (
        "error: Request failed after 3 retries in 8.1s; cause: Failed to fetch: https://pypi.invalid/simple/requests/; "
        "cause: error sending request for url (https://pypi.invalid/simple/requests/); cause: client error (Connect); "
        "cause: dns error; cause: failed to lookup address information: Name or service not known"
    )
    assert summary(MISSING.splitlines()).startswith("error: No solution found")  # not the "Using Python" line
    assert summary(WRAPPED.splitlines()) == (
        "error: No solution found when resolving dependencies; cause: Because this-is-never-installed-h25 was "
        "not found in the package registry and greet[docs] depends on this-is-never-installed-h25, we can "
        "conclude that greet[docs]'s requirements are unsatisfiable."
    )


def test_summary_without_an_error_line_is_the_tail_and_bounded() -> None:
    lines = [f"line {i}" for i in range(30)]
    assert summary(lines) == "; ".join(f"line {i}" for i in range(20, 30))
    long = summary(["error: Failed to build `x`", "  cause: " + "t" * 10_000 + " PermissionError: the end"])
    assert len(long) <= 1500
    assert long.startswith("error: Failed to build `x`; cause: ttt")
    assert long.endswith("PermissionError: the end")  # both ends kept
