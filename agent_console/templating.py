"""Jinja2 templates for the console: autoescaping everywhere, and a few display filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | str | None) -> str:
    moment = _as_datetime(value)
    return moment.isoformat() if moment else ""


def _ago(value: datetime | str | None) -> str:
    """Short relative time ("now", "5m", "3h", "2d"); the JS keeps it current."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    if seconds < 86400 * 30:
        return f"{seconds // 86400}d"
    return moment.strftime("%b %-d")


def _clock(value: datetime | str | None) -> str:
    """Time of day in UTC, the fallback before the JS shows local time."""
    moment = _as_datetime(value)
    return moment.strftime("%H:%M") if moment else ""


def _long(value: datetime | str | None) -> str:
    moment = _as_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _initials(name: str | None) -> str:
    text = name or ""
    if text.startswith("+") or text.startswith("Ext. "):
        return "#"  # a phone number has no initials
    words = [w for w in text.split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def _browser(user_agent: str | None) -> str:
    """ "Chrome 126 on macOS" from a user agent string; the raw string when unsure."""
    if not user_agent:
        return ""
    name = next(
        (f"{label} {m.group(1)}" for label, rx in _BROWSERS if (m := rx.search(user_agent))), None
    )
    system = next((label for token, label in _SYSTEMS if token in user_agent), None)
    if name is None:
        return user_agent[:120]
    return f"{name} on {system}" if system else name


def _duration(seconds: int | None) -> str:
    """Time on a page as the live view writes it: "42s", "3m 05s", "1h 4m"."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def _attribute(value: object) -> str:
    """A custom attribute's value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name: all text from outside is data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        iso=_iso,
        ago=_ago,
        clock=_clock,
        long=_long,
        initials=_initials,
        browser=_browser,
        attribute=_attribute,
        duration=_duration,
    )
    return Jinja2Templates(env=env)


templates = _make_templates()
