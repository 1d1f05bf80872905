"""Archiving email inboxes and phone lines from the console (admins); websites are
archived from their own page (websites.py). An archived inbox leaves the lists and
takes no new mail or calls; its conversations stay readable."""

from __future__ import annotations

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.web import Ctx, console_endpoint
from hub.models import Channel


async def _archive(ctx: Ctx, channel: Channel, back: str) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    await ctx.hub.inboxes.archive(inbox_id, channel)  # NotFound for another kind of inbox
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": inbox_id, "archived": True}})
    return RedirectResponse(back, status_code=303)


@console_endpoint(admin=True)
async def archive_email_inbox(ctx: Ctx) -> Response:
    return await _archive(ctx, Channel.EMAIL, "/console/email-inboxes")


@console_endpoint(admin=True)
async def archive_phone_line(ctx: Ctx) -> Response:
    return await _archive(ctx, Channel.VOICE, "/console/phone-lines")
