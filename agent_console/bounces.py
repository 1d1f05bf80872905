"""The admins' page of unmatched bounces: delivery reports about mail the hub never
sent, which open no ticket (hub/email/bounce_log.py)."""

from __future__ import annotations

from starlette.responses import Response

from agent_console.web import Ctx, console_endpoint


@console_endpoint(admin=True)
async def bounces_page(ctx: Ctx) -> Response:
    inboxes = {inbox.id: inbox for inbox in await ctx.hub.email_inboxes.list()}
    return ctx.render(
        "bounces.html",
        {"nav": "email_inboxes", "bounces": await ctx.hub.bounce_log.latest(), "inboxes": inboxes},
    )
