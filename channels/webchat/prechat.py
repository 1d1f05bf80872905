"""The site's pre-chat form, held for any client: a chat's first message gives
the name and email the site requires, unless the visitor's contact has them."""

from __future__ import annotations

from hub.core import Hub
from hub.inboxes.widget_settings import WidgetSettings
from hub.models import Inbox, Visitor

from .protocol import ChatMessage, ProtocolError

ASKED = ("name", "email")


async def check_prechat(hub: Hub, inbox: Inbox, visitor: Visitor, message: ChatMessage) -> None:
    """ProtocolError `prechat_required` when a required field is missing. A reply
    to a campaign opens its chat without the form, as the widget does."""
    prechat = WidgetSettings.stored(inbox.widget_settings).prechat
    required = [name for name in ASKED if getattr(prechat, name) == "required"]
    if not required or message.campaign_id is not None:
        return
    known = await hub.visitors.contact(visitor.contact_id)
    for name in required:
        given = getattr(message.contact, name, None) if message.contact else None
        stored = (getattr(known, name, None) or known.claimed.get(name)) if known else None
        if not (given or stored):
            raise ProtocolError(
                "prechat_required",
                f"This site asks for your {name} before the chat starts.",
                message.client_id,
            )
