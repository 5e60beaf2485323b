"""The resolution_suggestion rule base: specific when it recognises the problem, never empty."""

from __future__ import annotations

import pytest

from pm_agent_stub.suggestions import GENERIC_SUGGESTION, suggest_resolution


@pytest.mark.parametrize(
    ("description", "keyword"),
    [
        ("2 tests failed. Need fixes before proceeding.", "Tests are failing"),
        ("AssertionError: expected 3 got 4", "Tests are failing"),
        ("Prerequisites not met: Tests must pass before deployment", "prerequisite"),
        ("ModuleNotFoundError: No module named 'numpy'", "module or package is missing"),
        ("Connection refused to db:5432", "unreachable"),
        ("request timed out after 30s", "timed out"),
        ("Permission denied: /var/run/app", "Permission was denied"),
        ("FileNotFoundError: no such file 'config.yaml'", "file or directory is missing"),
        ("DATABASE_URL environment variable not set", "Configuration"),
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", "Docker engine"),
        ("docker build failed at step 4/9", "image build failed"),
        ("pull access denied for myimage", "image is missing"),
        ("process killed: out of memory", "out of memory"),
        ("No space left on device", "disk is full"),
        ("SyntaxError: invalid syntax (app.py, line 3)", "syntax error"),
        (
            "could not install the test environment of shop from requirements.txt + pytest with uv: package "
            "'no-such-pkg' was not found on the index; uv said: error: No solution found when resolving "
            "dependencies; cause: Because no-such-pkg was not found in the package registry",
            "each package and version the blocker names exists on the index",
        ),
        (
            "could not install the test environment of shop from no dependency metadata: pytest only with uv: "
            "the index could not be reached (https://pypi.org/simple/pytest/); uv said: error: Request failed "
            "after 3 retries; cause: dns error",
            "could not reach the package index",
        ),
    ],
)
def test_recognised_problems_get_specific_advice(description: str, keyword: str) -> None:
    advice = suggest_resolution(description)
    assert keyword.lower() in advice.lower()
    assert advice != GENERIC_SUGGESTION


@pytest.mark.parametrize("description", ["", "something odd happened", "¯\\_(ツ)_/¯"])
def test_unrecognised_problems_get_the_generic_next_step(description: str) -> None:
    assert suggest_resolution(description) == GENERIC_SUGGESTION
    assert GENERIC_SUGGESTION.strip()
