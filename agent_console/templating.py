"""Jinja2 templates for the console: autoescaping everywhere, and a few display filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from hub.models import Availability
from hub.visitors.devices import describe

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


def _long(value: datetime | str | None) -> str:
    moment = _as_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _initials(name: str | None) -> str:
    text = name or ""
    if text.startswith("+") or text.startswith("Ext. "):
        return "#"  # a phone number has no initials
    words = [w for w in text.split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def _browser(user_agent: str | None) -> str:
    """ "Chrome 126 on macOS" from a user agent string (the same parser as Live visitors)."""
    if not user_agent:
        return ""
    device = describe(user_agent)
    if device.system in {"Other", "Unknown system"}:
        return device.browser
    return f"{device.browser} on {device.system}"


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
        long=_long,
        initials=_initials,
        browser=_browser,
        attribute=_attribute,
    )
    # The header's availability menu follows the enum: a new choice appears by itself.
    env.globals["availabilities"] = [a.value for a in Availability]
    return Jinja2Templates(env=env)


templates = _make_templates()
