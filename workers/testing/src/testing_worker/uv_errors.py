"""What went wrong, from uv's output: the package and the index's answer, in one line.

uv (run with ``NO_COLOR``) ends a failure with ``error: ...`` and ``cause: ...`` lines, e.g.::

    error: No solution found when resolving dependencies
      cause: Because nonexistent-pkg was not found in the package registry and you require ...

    error: Request failed after 3 retries in 8.1s
      cause: Failed to fetch: https://pypi.invalid/simple/requests/
      cause: dns error
      cause: failed to lookup address information: Name or service not known

:func:`headline` names what failed (``package 'nonexistent-pkg' was not found on the index``,
``the index could not be reached (https://...)``); :func:`summary` is the error and its
causes joined, for the blocker to quote after it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from pm_worker.clip import clip

SUMMARY_LIMIT = 1500

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (  # a build backend writing into the project (a version file, egg-info) as a user who may not
            r"(?:PermissionError: \[Errno 13\] )?Permission denied: '(?P<path>/[^']+)'",
            "uid {uid} cannot write {path} while building the project (permission denied): give uid {uid} "
            "write access to the project's folder, or run the fleet as the folder's owner",
        ),
        (
            r"Because (?:there is no version of )?(?P<pkg>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])? "
            r"was not found in the package registry",
            "package {pkg!r} was not found on the index",
        ),
        (r"there is no version of (?P<pkg>[A-Za-z0-9][^\s,]*)", "no version {pkg} exists on the index"),
        (
            r"Because only (?P<pkg>[A-Za-z0-9][^\s,]*) is available and you require (?P<req>[^\s,]+),",
            "no version matching {req} exists on the index (only {pkg})",
        ),
        (
            r"(?:Failed to fetch|Could not connect to|error sending request for url)[:\s]*`?\(?(?P<url>https?://[^\s`)]+)",
            "the index could not be reached ({url})",
        ),
        (
            r"Failed to (?:build|prepare distributions|download and build)[:\s]*`?(?P<pkg>[^`\s]+(?: @ [^`\s]+)?)`?",
            "{pkg} failed to build",
        ),
        (r"Failed to download `?(?P<pkg>[^`\s]+)`?", "{pkg} could not be downloaded"),
        (
            r"The lockfile at `uv\.lock` needs to be updated",
            "uv.lock is out of date with pyproject.toml (run `uv lock` in the project)",
        ),
        (r"(?P<what>No interpreter found for [^\n]+)", "{what}"),
        (r"(?P<what>requires-python[^\n]*|The requested interpreter resolved to [^\n]+)", "{what}"),
        (
            r"(?:Distribution not found|File not found): `?(?P<path>[^`\s]+)`?",
            "{path} does not exist",
        ),
    )
)


_PREFIXES = ("error:", "cause:", "hint:", "warning:", "help:")


def error_lines(lines: Sequence[str]) -> list[str]:
    """From uv's first ``error:`` line on, stripped, a cause that uv wrapped over several lines
    joined back into one (its causes and hints follow the error)."""
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("error:")), None)
    if start is None:
        return []
    joined: list[str] = []
    for raw in lines[start:]:
        line = raw.strip()
        if not line:
            continue
        if joined and not line.startswith(_PREFIXES):
            joined[-1] += " " + line  # the rest of a wrapped sentence
        else:
            joined.append(line)
    return joined


def headline(lines: Sequence[str]) -> str | None:
    """What failed, naming the package or the index, if uv's output says."""
    text = "\n".join(error_lines(lines) or lines)
    for pattern, template in _RULES:
        match = pattern.search(text)
        if match:
            found = {k: v.rstrip(".:`") for k, v in match.groupdict().items() if v}
            return template.format(uid=os.getuid(), **found)
    return None


def summary(lines: Sequence[str]) -> str:
    """uv's error and its causes on one line (the last ten lines if it printed no ``error:``); a long
    one keeps both ends (what failed, and the build backend's last words)."""
    found = error_lines(lines) or [line.strip() for line in lines[-10:] if line.strip()]
    return clip("; ".join(found), SUMMARY_LIMIT, keep="both")  # a build's exception is at its end
