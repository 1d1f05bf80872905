"""Page addresses from a visitor's browser: validated, and stripped of secrets.

Never trust the widget: it strips too, but the hub strips again before
anything is stored or shown to an agent.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hub.errors import InvalidInput, TooLarge

MAX_URL_CHARS = 2000
MAX_TITLE_CHARS = 300
# Query parameters whose names match this are removed (case-insensitive):
# sign-in links, reset links and tracking e-mails put secrets there.
DEFAULT_STRIP_PATTERN = r"token|key|password|email|session"
REMOVED = "[removed]"

# A value that looks like an e-mail address is removed whatever its name.
_EMAIL_VALUE = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def strip_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidInput(f"not a regular expression: {exc}") from None


def _strip_pairs(text: str, pattern: re.Pattern[str]) -> str:
    pairs = parse_qsl(text, keep_blank_values=True)
    kept = [
        (name, value)
        for name, value in pairs
        if not pattern.search(name) and not _EMAIL_VALUE.search(value)
    ]
    if len(kept) == len(pairs):
        return text
    return urlencode(kept)


def clean_url(value: object, pattern: re.Pattern[str], field: str = "url") -> str:
    """An http(s) URL without secret-looking parameters, or InvalidInput."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string")
    if len(value) > MAX_URL_CHARS:
        raise TooLarge(f"{field} is longer than {MAX_URL_CHARS} characters")
    if _CONTROL.search(value):
        raise InvalidInput(f"{field} contains control characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a URL") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise InvalidInput(f"{field} must be an http or https URL")
    netloc = parts.netloc.rsplit("@", 1)[-1]  # user:password@ never leaves the browser
    query = _strip_pairs(parts.query, pattern)
    fragment = parts.fragment
    if "=" in fragment:  # #access_token=… style fragments
        fragment = _strip_pairs(fragment, pattern)
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, query, fragment))


def clean_optional_url(value: object, pattern: re.Pattern[str]) -> str | None:
    """A referrer: the same cleaning, but anything unusable is simply dropped."""
    if value is None or value == "":
        return None
    try:
        return clean_url(value, pattern, "referrer")
    except InvalidInput:
        return None


def clean_title(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("title must be a string")
    if len(value) > MAX_TITLE_CHARS:
        raise TooLarge(f"title is longer than {MAX_TITLE_CHARS} characters")
    return _CONTROL.sub(" ", value).strip() or None


def source(referrer: str | None, page_url: str) -> str:
    """Where a visit came from, as a person says it: "Direct", or the referring host."""
    if not referrer:
        return "Direct"
    host = urlsplit(referrer).hostname or ""
    if host and host == urlsplit(page_url).hostname:
        return "Internal"
    return host.removeprefix("www.") or "Direct"
