"""The website inbox form (agent_console/websites.py): what an admin typed, read into
the hub's values, with one error per field that is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_console.web import Ctx
from hub.errors import InvalidInput
from hub.inboxes.service import clean_origins
from hub.inboxes.widget_settings import (
    FIELD_MODES,
    LANGUAGES,
    POSITIONS,
    PRECHAT_FIELDS,
    WidgetSettings,
    clean_settings,
)
from hub.models import Inbox
from hub.text import clean_text

MAX_ORIGINS_TEXT = 20_000
MAX_FIELD_CHARS = 2_000
POSITION_LABELS = {"bottom-right": "Bottom right", "bottom-left": "Bottom left"}
MODE_LABELS = {"off": "Off", "optional": "Optional", "required": "Required"}
assert set(POSITION_LABELS) == set(POSITIONS) and set(MODE_LABELS) == set(FIELD_MODES)

_ON = {"1", "on", "true", "yes"}


@dataclass
class WebsiteForm:
    """The form's values as typed (shown again when something is wrong)."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls) -> WebsiteForm:
        return cls.of(None)

    @classmethod
    def of(cls, inbox: Inbox | None) -> WebsiteForm:
        widget = WidgetSettings.stored(inbox.widget_settings if inbox else None)
        return cls(
            {
                "name": inbox.name if inbox else "",
                "allowed_origins": "\n".join(inbox.allowed_origins) if inbox else "",
                "require_identity": inbox.require_identity if inbox else False,
                "color": widget.color,
                "position": widget.position,
                "greeting": widget.greeting,
                "language": widget.language,
                "away_message": widget.away_message,
                **{f"prechat_{name}": getattr(widget.prechat, name) for name in PRECHAT_FIELDS},
                "question_label": widget.prechat.question_label,
            }
        )


@dataclass(frozen=True)
class WebsiteValues:
    name: str
    allowed_origins: list[str]
    require_identity: bool
    widget: WidgetSettings


def read_form(ctx: Ctx) -> tuple[WebsiteForm, WebsiteValues | None]:
    """The form as typed and, when every field is right, the values to save."""
    origins_value = ctx.data.get("allowed_origins", "")
    if isinstance(origins_value, list):  # JSON may send a list
        origin_lines = [str(v) for v in origins_value][:1000]
        origins_text = "\n".join(origin_lines)
    else:
        origins_text = ctx.text("allowed_origins", MAX_ORIGINS_TEXT)
        origin_lines = origins_text.splitlines()
    identity = ctx.data.get("require_identity", "")
    texts = {
        name: ctx.text(name, MAX_FIELD_CHARS)
        for name in (
            "name",
            "color",
            "position",
            "greeting",
            "language",
            "away_message",
            "question_label",
            *(f"prechat_{name}" for name in PRECHAT_FIELDS),
        )
    }
    form = WebsiteForm(
        {
            **texts,
            "allowed_origins": origins_text,
            "require_identity": identity is True or str(identity).lower() in _ON,
        }
    )
    name = origins = widget = None
    try:
        name = clean_text(texts["name"], 100, "name")
    except InvalidInput as exc:
        form.errors["name"] = _sentence(exc.message, "name")
    try:
        origins = clean_origins(origin_lines)
    except InvalidInput as exc:
        form.errors["allowed_origins"] = _sentence(exc.message, "")
    try:
        widget = clean_settings(
            {
                "color": texts["color"] or WidgetSettings().color,
                "position": texts["position"] or WidgetSettings().position,
                "greeting": texts["greeting"],
                "language": texts["language"] or "en",
                "away_message": texts["away_message"],
                "prechat": {
                    **{n: texts[f"prechat_{n}"] or "off" for n in PRECHAT_FIELDS},
                    "question_label": texts["question_label"],
                },
            }
        )
    except InvalidInput as exc:
        form.errors[exc.field or "form"] = _sentence(exc.message, exc.field or "")
    if form.errors or name is None or origins is None or widget is None:
        return form, None
    return form, WebsiteValues(name, origins, bool(form.values["require_identity"]), widget)


def _sentence(message: str, field_name: str) -> str:
    """`name must not be empty` → `Must not be empty.`"""
    text = message
    if field_name and text.startswith(field_name + " "):
        text = text[len(field_name) + 1 :]
    text = text[:1].upper() + text[1:]
    return text.rstrip(".") + "."


def choices() -> dict[str, Any]:
    """The form's select options."""
    return {
        "positions": POSITION_LABELS,
        "languages": LANGUAGES,
        "modes": MODE_LABELS,
        "prechat_fields": (("name", "Name"), ("email", "Email"), ("question", "Custom question")),
    }
