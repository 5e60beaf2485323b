"""Settings: what users type into env files must work, and bad values must say which variable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pm_worker.settings import SettingsError, load_settings, normalize_agent_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("pm-agent:8000", "http://pm-agent:8000/mcp"),
        ("http://pm-agent:8000", "http://pm-agent:8000/mcp"),
        ("http://pm-agent:8000/", "http://pm-agent:8000/mcp"),
        ("http://pm-agent:8000/mcp", "http://pm-agent:8000/mcp"),
        ("https://pm.example.org/mcp", "https://pm.example.org/mcp"),
        ("localhost:8000/custom/mcp", "http://localhost:8000/custom/mcp"),
    ],
)
def test_url_spellings(given: str, expected: str) -> None:
    assert normalize_agent_url(given) == expected


@pytest.mark.parametrize("bad", ["", "ftp://x:1", "http://:8000", "pm-agent:port"])
def test_bad_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        normalize_agent_url(bad)


def test_env_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_AGENT_URL", "pm-agent:8000")
    monkeypatch.setenv("AGENT_SKILLS", "testing, pytest,,unit-testing")
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "7.5")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    s = load_settings()
    assert s.pm_agent_url == "http://pm-agent:8000/mcp"
    assert s.agent_skills == ["testing", "pytest", "unit-testing"]
    assert s.shutdown_grace_seconds == 7.5
    assert s.log_format == "json"


def test_skills_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SKILLS", '["docker", "ci/cd"]')
    assert load_settings().agent_skills == ["docker", "ci/cd"]


def test_agent_id_default_and_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_ID", raising=False)
    host = socket.gethostname()
    assert load_settings().resolve_agent_id("testing") == f"testing-{host}"
    monkeypatch.setenv("AGENT_ID", "qa-{hostname}-1")
    assert load_settings().resolve_agent_id("testing") == f"qa-{host}-1"
    monkeypatch.setenv("AGENT_ID", "fixed-id")
    assert load_settings().resolve_agent_id("testing") == "fixed-id"


def test_agent_id_with_unknown_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_ID", "w-{nodename}")
    with pytest.raises(SettingsError, match=r"AGENT_ID.*\{hostname\}"):
        load_settings().resolve_agent_id("x")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SHUTDOWN_GRACE_SECONDS", "soon"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("POLL_WAIT_SECONDS", "45"),
        ("PM_AGENT_URL", "ftp://pm-agent:8000"),
        ("LOG_FORMAT", "xml"),
        ("AGENT_SKILLS", "[not json"),
        ("PM_TRANSPORT", "carrier-pigeon"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    line = str(info.value)
    assert line.startswith(f"invalid setting {var}")
    assert "\n" not in line


def test_token_value_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_AGENT_TOKEN", "s3cret")
    monkeypatch.setenv("CALL_TIMEOUT_SECONDS", "zero")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "s3cret" not in str(info.value)


def test_token_file_is_read_once_and_kept_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-from-file\n")
    monkeypatch.setenv("PM_AGENT_TOKEN_FILE", str(token_file))
    settings = load_settings()
    token_file.write_text("changed later\n")  # read at start, not per call
    assert settings.token() == "s3cret-from-file"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read the token file"), ("\n", "is empty"), ("a\nb\n", "must hold one line")],
)
def test_bad_token_file_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, expected: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    monkeypatch.setenv("PM_AGENT_TOKEN_FILE", str(token_file))
    with pytest.raises(SettingsError) as info:
        load_settings()
    line = str(info.value)
    assert "PM_AGENT_TOKEN_FILE" in line
    assert expected in line
    assert "\n" not in line


def test_token_and_token_file_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("PM_AGENT_TOKEN", "from-env")
    monkeypatch.setenv("PM_AGENT_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(SettingsError, match="set only one") as info:
        load_settings()
    assert "from-env" not in str(info.value)
    assert "from-file" not in str(info.value)


def test_compose_blanks_for_the_marcus_settings_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-compose.yml passes `PM_AGENT_HOST_HEADER: ${PM_AGENT_HOST_HEADER:-}`: an empty value.
    monkeypatch.setenv("PM_AGENT_HOST_HEADER", "")
    monkeypatch.setenv("PM_PROJECT_ID", "  ")
    settings = load_settings()
    assert settings.pm_agent_host_header is None
    assert settings.pm_project_id is None
