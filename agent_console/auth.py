"""Console sessions, CSRF tokens and same-origin checks.

The session lives in Starlette's signed, http-only, SameSite=lax cookie
(installed in `hub.composition.app`). It holds two keys:

    sid        the agent's session token (absent when anonymous); the store
               keeps only its hash, and logging out deletes it there, so a
               copied cookie stops working
    csrf       a random token every POST must echo back, in the form field
               `csrf_token` or the `X-CSRF-Token` header
    notice     a line the next console page shows once (failed logins since
               the last one), then forgets
    pending    between the password and the second step of a two-factor login:
               which agent, which step ("code" or "setup"), where to go next and
               until when; it opens nothing (no `sid`), and logging in drops it

Logging in rotates the session: it is cleared and gets a fresh token, so a
token planted before login is worthless afterwards.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from hub.core import Hub
from hub.models import Agent

SESSION_TOKEN = "sid"  # noqa: S105 - the key name, not a secret
SESSION_CSRF = "csrf"
SESSION_NOTICE = "notice"
SESSION_PENDING = "pending"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# 32 random bytes, URL-safe: unguessable and fits a header or form field.
CSRF_TOKEN_BYTES = 32

# A `next` target is a path on this site: one leading slash, no scheme or
# host, no backslash (browsers read `/\evil.example` as `//evil.example`),
# nothing invisible.
MAX_NEXT_CHARS = 2000
_SAFE_NEXT = re.compile(r"^/(?![/\\])[^\\\s\x00-\x1f\x7f]*$")

DEFAULT_NEXT = "/console/"

# Time to type the second step's code after the password, then start again.
PENDING_LOGIN_SECONDS = 300


def csrf_token(conn: HTTPConnection) -> str:
    """This session's CSRF token, created on first use."""
    token = conn.session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
        conn.session[SESSION_CSRF] = token
    return token


def csrf_matches(conn: HTTPConnection, presented: object) -> bool:
    expected = conn.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not isinstance(presented, str):
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


async def log_in(conn: HTTPConnection, agent: Agent) -> None:
    """Rotate the session: forget everything from before, then open a new one."""
    hub: Hub = conn.app.state.hub
    conn.session.clear()
    conn.session[SESSION_TOKEN] = await hub.agents.open_session(agent)
    conn.session[SESSION_CSRF] = secrets.token_urlsafe(CSRF_TOKEN_BYTES)


@dataclass(frozen=True)
class PendingLogin:
    """An agent who gave the right password and owes a second step."""

    agent_id: int
    step: str  # "code" or "setup" (hub/agents/two_factor.py `login_step`)
    next: str


def begin_second_step(conn: HTTPConnection, agent: Agent, step: str, next_path: str) -> None:
    """Rotate the session as `log_in` does, but open none: remember who is half-way."""
    conn.session.clear()
    conn.session[SESSION_PENDING] = {
        "agent": agent.id,
        "step": step,
        "next": next_path,
        "until": int(time.time()) + PENDING_LOGIN_SECONDS,
    }
    conn.session[SESSION_CSRF] = secrets.token_urlsafe(CSRF_TOKEN_BYTES)


def pending_login(conn: HTTPConnection) -> PendingLogin | None:
    """The half-way login of this session, if it has one that has not run out."""
    pending = conn.session.get(SESSION_PENDING)
    if not isinstance(pending, dict):
        return None
    agent_id, step, until = pending.get("agent"), pending.get("step"), pending.get("until")
    if (
        not isinstance(agent_id, int)
        or step not in {"code", "setup"}
        or not isinstance(until, int)
        or until < time.time()
    ):
        conn.session.pop(SESSION_PENDING, None)
        return None
    next_path = pending.get("next")
    return PendingLogin(
        agent_id, step, safe_next(next_path if isinstance(next_path, str) else None)
    )


def set_notice(conn: HTTPConnection, text: str) -> None:
    """A line for the next console page to show once."""
    conn.session[SESSION_NOTICE] = text


def take_notice(conn: HTTPConnection) -> str | None:
    """The line waiting to be shown, if any; it is shown only this once."""
    text = conn.session.pop(SESSION_NOTICE, None)
    return text if isinstance(text, str) else None


async def log_out(conn: HTTPConnection) -> None:
    token = conn.session.get(SESSION_TOKEN)
    if isinstance(token, str):
        hub: Hub = conn.app.state.hub
        await hub.agents.close_session(token)
    conn.session.clear()


async def current_agent(conn: HTTPConnection) -> Agent | None:
    """The logged-in agent, checked against the store each time: a session that was
    logged out, expired, or whose agent was deleted or changed password is over."""
    token = conn.session.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None
    hub: Hub = conn.app.state.hub
    agent = await hub.agents.session_agent(token)
    if agent is None:
        conn.session.clear()
    return agent


def safe_next(value: str | None) -> str:
    """`value` if it is a local path, else the console's start page."""
    if value and len(value) <= MAX_NEXT_CHARS and _SAFE_NEXT.match(value):
        return value
    return DEFAULT_NEXT


def own_origins(headers: Mapping[str, str], public_url: str) -> set[str]:
    """Origins this hub answers as: the Host header under http or https, and the public URL.

    Both schemes are accepted for the Host header because a TLS-terminating
    proxy in front of the hub hands it plain http.
    """
    origins = {_origin(public_url)}
    host = headers.get("host", "").strip().lower()
    if host:
        origins.add(f"http://{host}")
        origins.add(f"https://{host}")
    origins.discard("")
    return origins


def origin_allowed(headers: Mapping[str, str], public_url: str, required: bool) -> bool:
    """Whether the `Origin` header names this hub (a missing one passes unless `required`)."""
    origin = headers.get("origin")
    if origin is None:
        return not required
    return origin.strip().lower() in own_origins(headers, public_url)


def _origin(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return ""
    netloc = parts.netloc
    default = ":443" if parts.scheme == "https" else ":80"
    if netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{parts.scheme}://{netloc}"
