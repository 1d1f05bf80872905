"""The first-run checklist an admin sees on the console's home until it is done:
add your site, connect your email, invite agents, set business hours."""

from __future__ import annotations

from dataclasses import dataclass

from hub.core import Hub
from hub.inboxes.service import DEMO_SITE_TOKEN
from hub.models import Channel


@dataclass(frozen=True)
class Step:
    title: str
    done: bool
    href: str
    hint: str


async def setup_steps(hub: Hub) -> list[Step]:
    """The four steps, each ticked from what is stored now."""
    websites = [
        inbox
        for inbox in await hub.inboxes.list()
        if inbox.channel is Channel.WEBSITE and inbox.site_token != DEMO_SITE_TOKEN
    ]
    sending = [inbox for inbox in await hub.email_inboxes.list() if inbox.smtp.configured]
    agents = await hub.agents.list()
    hours = [inbox for inbox in await hub.inboxes.list() if await hub.business_hours.get(inbox.id)]
    return [
        Step(
            "Add your website",
            bool(websites),
            "/console/inboxes/new",
            "Its script tag puts the chat on your own pages.",
        ),
        Step(
            "Connect your email",
            bool(sending),
            "/console/email-inboxes/new",
            "Mail to your support address becomes tickets; replies go out from it.",
        ),
        Step(
            "Invite your team",
            len(agents) > 1,
            "/console/agents",
            "Each colleague gets a link to set their own password.",
        ),
        Step(
            "Set business hours",
            bool(hours),
            "/console/campaigns#hours",
            "The widget, campaigns and routing follow them.",
        ),
    ]


async def checklist_for(hub: Hub, is_admin: bool) -> list[Step] | None:
    """The steps for an admin while any is left; None otherwise."""
    if not is_admin:
        return None
    steps = await setup_steps(hub)
    return None if all(step.done for step in steps) else steps
