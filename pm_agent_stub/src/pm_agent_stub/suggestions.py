"""A small rule base that turns a blocker description into a next step.

The tutorial's workers print `resolution_suggestion`, so it must never be empty and should
be specific when the text says what went wrong. First matching rule wins; order goes from
most specific to most general (a worker's own permission blocker, which names its uid and the
fix, first: its text holds paths and commands that other rules would misread).
"""

from __future__ import annotations

import re
from typing import Final

_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), advice)
    for pattern, advice in (
        (
            r"uid \d+ .*(cannot (write|read)|denied access)",
            "The worker's user may not use that folder (common when a project is copied or bind-mounted into the "
            "workspace): run the fix the blocker names (it gives that uid the folder, or runs the fleet as the "
            "folder's owner), then rerun the task.",
        ),
        (
            r"out of memory|\bOOM\b|memoryerror|cannot allocate memory|killed.*(signal 9|exit code 137)|exit code 137",
            "The process ran out of memory: lower parallelism or input size, or give the worker/container more memory, then retry.",
        ),
        (
            r"no space left|disk (is )?full|quota exceeded|ENOSPC",
            "The disk is full: free space (old images, caches, build output) or enlarge the volume, then retry.",
        ),
        (
            # the testing worker's own blockers (workers/testing: testing_worker.envbuild), before
            # the generic network and missing-package rules, which would misread their uv output
            r"could not install the test environment.*(index could not be reached|failed to fetch|dns error|"
            r"connection refused|tcp connect|network|timed? ?out)",
            "The worker could not reach the package index: check that it has network access (under Compose, that "
            "containers reach https://pypi.org; behind a proxy, Docker's own proxy settings pass HTTPS_PROXY to them), "
            "or point uv at a reachable index (UV_INDEX_URL, or [tool.uv] index settings in the project), then rerun "
            "the task.",
        ),
        (
            r"could not install the test environment",
            "The project's test environment could not be installed: check that each package and version the blocker "
            "names exists on the index (fix it in pyproject.toml or requirements*.txt, or give payload.install), or "
            "that payload.python names an interpreter this machine has, then rerun the task.",
        ),
        (
            r"docker daemon|docker engine|docker\.sock|cannot connect to the docker|is the docker daemon running",
            "The Docker engine is not reachable: check that the daemon runs and that the worker can use /var/run/docker.sock (or DOCKER_HOST).",
        ),
        (
            r"docker build|dockerfile|image build|build failed|failed to build|failed to solve",
            "The image build failed: read the first failing Dockerfile step in the build log, fix it (base image, COPY paths, package install), and rebuild.",
        ),
        (
            r"(pull access denied|manifest unknown|image not found|no such image|manifest for .* not found)",
            "The Docker image is missing: check the image name and tag, build or push it first, or log in to the registry.",
        ),
        (
            r"syntax ?error|indentationerror|parse error|unexpected token|invalid syntax",
            "There is a syntax error: open the file and line named in the error, fix it, and rerun the linter/tests.",
        ),
        (
            r"(\d+\s+)?tests? (failed|failing)|failing tests?|assertion ?error|assert(ion)? failed|\bFAILED\b|pytest.*fail",
            "Tests are failing: run the failing tests locally, read the first assertion error, fix the code (or an outdated test), then rerun the suite.",
        ),
        (
            r"modulenotfounderror|no module named|importerror|cannot find module|package .* not (found|installed)|missing (python )?(package|module|dependency|library)",
            "A module or package is missing: add it to the project's dependencies (pyproject/requirements), reinstall, and retry.",
        ),
        (
            r"prerequisite|depends on|dependency|must (pass|be done|be completed|finish) (first|before)|waiting (on|for) ",
            "A prerequisite is not met: finish or unblock the task it depends on first (check get_task_context for its dependencies), then resolve this blocker.",
        ),
        (
            r"connection refused|econnrefused|could not connect|failed to connect|connection (reset|aborted)|unreachable|name or service not known|dns|getaddrinfo",
            "A service is unreachable: check that it is running, the host name and port are right, and that the network/firewall allows the connection, then retry.",
        ),
        (
            r"timed? ?out|timeout|deadline exceeded|took too long",
            "An operation timed out: check whether the remote service is slow or down, raise the timeout if the work is legitimately long, and retry.",
        ),
        (
            r"permission denied|access denied|forbidden|\b403\b|\b401\b|unauthori[sz]ed|eacces|not permitted",
            "Permission was denied: check the credentials/token and the file or resource permissions of the user the worker runs as.",
        ),
        (
            r"no such file|file not found|filenotfounderror|enoent|does not exist|not found: .*\.\w+|missing file",
            "A file or directory is missing: check the path (relative to the workspace), create or generate it, or fix the task payload.",
        ),
        (
            r"environment variable|env var|\benv\b|not set|missing (config|configuration|setting)|config(uration)? (error|missing|invalid)|invalid (config|setting)",
            "Configuration is missing or invalid: set the required environment variable or config value and restart the worker.",
        ),
        (
            r"lease expired|expired \d+ times|max(imum)? attempts",
            "Workers keep losing this task: check the worker logs for crashes or hangs during it, split it into smaller steps or give it more time, then resolve the blocker to retry.",
        ),
        (
            r"rate limit|too many requests|\b429\b",
            "A rate limit was hit: wait and retry with backoff, or lower the request rate.",
        ),
    )
)

GENERIC_SUGGESTION: Final = (
    "Read the full error output and the task's progress log (get_task_context), fix the cause "
    "or split the task into smaller steps, then resolve the blocker so the task is offered again."
)


def suggest_resolution(description: str) -> str:
    """A specific next step when a rule recognises the problem, else the generic one; never empty."""
    for pattern, advice in _RULES:
        if pattern.search(description):
            return advice
    return GENERIC_SUGGESTION
