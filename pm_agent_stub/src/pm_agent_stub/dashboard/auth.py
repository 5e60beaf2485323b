"""Who may see the dashboard and /metrics, and which requests may change the board.

With `PM_AGENT_TOKEN` set, a request is the operator's if it carries the token as
`Authorization: Bearer <token>` (scripts, Prometheus) or a session cookie from the login
form (browsers). The cookie never holds the token: it is a random 256-bit session id,
HttpOnly (page scripts cannot read it), SameSite=Strict (other sites' pages do not send it),
valid for `SESSION_SECONDS`. Sessions live in the stub process (only their ids' SHA-256),
so logging out ends one on the server: a copy of the cookie stops working at once, and the
streams it opened end (issue 24 item 5; the signed cookie it replaced stayed valid for its
12 hours whatever happened). A restart of the stub, and so a change of the token, ends every
session. At most `MAX_SESSIONS` are kept (the oldest ends first). Without a token everything
is open, as `/mcp` is.

A token never travels in a URL and is never logged (nor is the cookie). Changes (resolve,
login, logout) must come from the dashboard's own origin: a browser always sends `Origin`
(or `Sec-Fetch-Site`) with a POST, and one naming another site, or another port of this
host (SameSite does not separate ports), is refused; a cookie-borne POST with neither is
refused too. Bearer-token clients send no cookie, so no other site can borrow their
credentials. The Host header must be one the stub serves (`PM_AGENT_ALLOWED_HOSTS`, as
for `/mcp`), so a DNS-rebinding page cannot read the board either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE_NAME: Final = "pm_agent_session"
SESSION_SECONDS: Final = 12 * 3600
MAX_SESSIONS: Final = 1000

Via = Literal["open", "bearer", "cookie"]


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """The same rule as the MCP endpoint's DNS-rebinding check: exact, or `name:*` for any port."""
    if not host:
        return False
    if host in allowed:
        return True
    return any(a.endswith(":*") and host.startswith(a[:-1]) for a in allowed)


class OperatorAuth:
    """The dashboard's credentials check; `token=None` means the stub runs without auth."""

    def __init__(
        self,
        token: str | None,
        allowed_hosts: list[str],
        *,
        host_check: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self._expected_header = f"Bearer {token}".encode() if token is not None else b""
        self.allowed_hosts = allowed_hosts
        self.host_check = host_check
        self._clock = clock
        self._sessions: OrderedDict[str, float] = OrderedDict()  # SHA-256 of the id -> expiry

    @property
    def enabled(self) -> bool:
        return self._token is not None

    # ------------------------------------------------------------------ sessions

    @staticmethod
    def _key(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def new_session(self) -> str:
        """A new session's cookie value, good for SESSION_SECONDS from now."""
        value = secrets.token_urlsafe(32)
        self._sessions[self._key(value)] = self._clock() + SESSION_SECONDS
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return value

    def session(self, value: str | None) -> str | None:
        """The session a cookie value names (a key to tell sessions apart, never the value), or None."""
        if not self.enabled or not value or len(value) > 100:
            return None
        key = self._key(value)
        expires = self._sessions.get(key)
        if expires is None:
            return None
        if expires <= self._clock():
            del self._sessions[key]
            return None
        return key

    def session_valid(self, value: str | None) -> bool:
        return self.session(value) is not None

    def end_session(self, value: str | None) -> str | None:
        """Log a session out: its cookie is no good from now on. Its key, or None if it was not one."""
        key = self.session(value)
        if key is not None:
            del self._sessions[key]
        return key

    def token_matches(self, given: str) -> bool:
        """A login attempt (constant-time)."""
        return self.enabled and hmac.compare_digest(f"Bearer {given}".encode(), self._expected_header)

    # ------------------------------------------------------------------ requests

    def credentials(self, request: Request) -> Via | None:
        """How the request is the operator's, or None."""
        if not self.enabled:
            return "open"
        header = request.headers.get("authorization", "").encode()
        if header and hmac.compare_digest(header, self._expected_header):
            return "bearer"
        if self.session_valid(request.cookies.get(COOKIE_NAME)):
            return "cookie"
        return None

    def host_refusal(self, request: Request) -> str | None:
        """Why the Host header is refused, or None."""
        host = request.headers.get("host")
        if not self.host_check or host_allowed(host, self.allowed_hosts):
            return None
        return (
            f"Host {host!r} is not one this stub serves; open the dashboard through an allowed host "
            "or add it to PM_AGENT_ALLOWED_HOSTS."
        )

    def cross_site_refusal(self, request: Request, via: Via | None) -> str | None:
        """Why a state-changing request is refused as cross-site, or None if it is same-origin."""
        host = request.headers.get("host", "")
        origin = request.headers.get("origin")
        if origin is not None:
            if origin == "null" or urlsplit(origin).netloc != host:
                return f"cross-site request refused: Origin {origin!r} is not this dashboard ({host})."
            return None
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None:
            if fetch_site in ("same-origin", "none"):
                return None
            return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})."
        if via == "cookie":
            return "cross-site request refused: a browser request without Origin; reload the dashboard."
        return None
