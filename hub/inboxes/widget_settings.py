"""A website's widget settings, as admins set them in the console: colour, position,
greeting, language, away message and the pre-chat form.

Stored as one JSON object on the inbox (`inboxes.widget_settings`); what is not
stored takes its default, so a website created before these settings exists
looks as it always did. The welcome frame carries `to_wire()` to the widget.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hub.errors import InvalidInput
from hub.text import clean_text

DEFAULT_COLOR = "#2563eb"
POSITIONS = ("bottom-right", "bottom-left")
# The languages the widget has its own words in (widget.js, WORDS).
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español"}
FIELD_MODES = ("off", "optional", "required")
PRECHAT_FIELDS = ("name", "email", "question")
MAX_GREETING_CHARS = 300
MAX_AWAY_CHARS = 300
# A contact attribute's name holds the question (hub/visitors/service.py, MAX_ATTRIBUTE_NAME).
MAX_QUESTION_CHARS = 64
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class PreChat:
    """Which fields the visitor fills in before the first message."""

    name: str = "off"
    email: str = "off"
    question: str = "off"
    question_label: str = ""

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f) != "off" for f in PRECHAT_FIELDS)


@dataclass(frozen=True)
class WidgetSettings:
    color: str = DEFAULT_COLOR
    position: str = POSITIONS[0]
    # Empty: the widget's own words in its language.
    greeting: str = ""
    language: str = "en"
    away_message: str = ""
    prechat: PreChat = field(default_factory=PreChat)

    @classmethod
    def stored(cls, value: dict[str, Any] | None) -> WidgetSettings:
        """The settings of a stored object; unknown or broken keys take their default."""
        if not isinstance(value, dict):
            return cls()
        try:
            return clean_settings(value)
        except InvalidInput:
            return cls()

    def to_stored(self) -> dict[str, Any]:
        return asdict(self)

    def to_wire(self) -> dict[str, Any]:
        """What the widget is told in its welcome (docs/widget-protocol.md)."""
        return asdict(self)


def clean_color(value: object) -> str:
    if not isinstance(value, str) or not _COLOR.fullmatch(value.strip()):
        raise InvalidInput("colour must be #rrggbb, such as #2563eb", "color")
    return value.strip().lower()


def _optional(value: object, max_chars: int, field_name: str) -> str:
    """Text that may be left empty (then the widget's own words are used)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return clean_text(value, max_chars, field_name)


def _choice(value: object, allowed: tuple[str, ...], field_name: str, what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of: {', '.join(allowed)}", field_name)
    return str(value)


def clean_settings(values: dict[str, Any]) -> WidgetSettings:
    """Validated settings from what an admin typed (a missing key takes its default);
    InvalidInput names the field at fault."""
    default = WidgetSettings()
    language = values.get("language", default.language)
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of: {', '.join(LANGUAGES)}", "language")
    raw = values.get("prechat") or {}
    if not isinstance(raw, dict):
        raise InvalidInput("prechat must be an object", "prechat")
    modes = {
        name: _choice(raw.get(name, "off"), FIELD_MODES, f"prechat_{name}", f"the {name} field")
        for name in PRECHAT_FIELDS
    }
    label = _optional(raw.get("question_label"), MAX_QUESTION_CHARS, "question_label")
    if modes["question"] != "off" and not label:
        raise InvalidInput("write the custom question, or turn it off", "question_label")
    return WidgetSettings(
        color=clean_color(values.get("color", default.color)),
        position=_choice(
            values.get("position", default.position), POSITIONS, "position", "position"
        ),
        greeting=_optional(values.get("greeting"), MAX_GREETING_CHARS, "greeting"),
        language=str(language),
        away_message=_optional(values.get("away_message"), MAX_AWAY_CHARS, "away_message"),
        prechat=PreChat(**modes, question_label=label),
    )
