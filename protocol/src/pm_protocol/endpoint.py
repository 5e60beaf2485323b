"""Where the stub is and how to prove who you are: the URL forms and the token file.

Both ends of the wire read the same settings (docs/protocol.md, "Worker settings"):
`PM_AGENT_URL` in any of its accepted forms, and `PM_AGENT_TOKEN` or `PM_AGENT_TOKEN_FILE`.
Workers (`pm_worker.settings`) and the operator CLI (`python -m pm_agent_stub status --url ...`)
both use these functions, so a URL or token that works for one works for the other.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MAX_TOKEN_FILE_BYTES = 64 * 1024


def normalize_agent_url(value: str) -> str:
    """Accept `host:port`, `http://host:port` and `http://host:port/mcp`; return the /mcp URL."""
    raw = value.strip()
    if not raw:
        raise ValueError("empty URL; give e.g. pm-agent:8000 or http://pm-agent:8000/mcp")
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme!r} is not http or https")
    if not parts.hostname:
        raise ValueError(f"no host in {value!r}; give e.g. pm-agent:8000")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError as exc:
        raise ValueError(f"bad port in {value!r}") from exc
    path = parts.path.rstrip("/")
    if path in ("", "/"):
        path = "/mcp"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def read_token_file(path: Path) -> str:
    """The token in `path` (surrounding whitespace and the trailing newline dropped); ValueError says why not."""
    try:
        with path.open(encoding="utf-8") as handle:
            token = handle.read(MAX_TOKEN_FILE_BYTES + 1).strip()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the token file {str(path)!r} is not UTF-8 text") from None
    if not token:
        raise ValueError(f"the token file {str(path)!r} is empty")
    if len(token) > MAX_TOKEN_FILE_BYTES or any(c in token for c in "\r\n"):
        raise ValueError(f"the token file {str(path)!r} must hold one line: the token")
    return token


def bearer_token(token: str | None, token_file: Path | None) -> str | None:
    """The bearer token of `PM_AGENT_TOKEN` or of the file `PM_AGENT_TOKEN_FILE` names, never both;
    None when neither is set. ValueError says what is wrong, naming the setting."""
    if token_file is None:
        return token
    if token is not None:
        raise ValueError(
            "PM_AGENT_TOKEN and PM_AGENT_TOKEN_FILE are both set; set only one "
            "(PM_AGENT_TOKEN_FILE keeps the token out of the environment)"
        )
    try:
        return read_token_file(token_file)
    except ValueError as exc:
        raise ValueError(f"PM_AGENT_TOKEN_FILE: {exc}") from None
