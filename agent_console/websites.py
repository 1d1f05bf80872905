"""Console settings of a website inbox (admins): whether identity claims need a hash.

The page itself is the inboxes page (views.inboxes_page); this module owns its forms
that are not about email.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.web import Ctx, console_endpoint
from hub.errors import InvalidInput, NotFound
from hub.models import Channel

_ON = {"1", "on", "true", "yes"}
_OFF = {"", "0", "off", "false", "no"}


def _flag(value: object) -> bool:
    """A checkbox (absent means off) or a JSON boolean; anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _ON | _OFF:
        return value.lower() in _ON
    raise InvalidInput("require_identity must be on or off", "require_identity")


@console_endpoint(admin=True)
async def require_identity(ctx: Ctx) -> Response:
    """Turn on (or off) refusing identity claims without a valid hash on a website."""
    website_id = ctx.request.path_params["inbox_id"]
    website = await ctx.hub.inboxes.get(website_id)
    if website is None or website.channel is not Channel.WEBSITE:
        raise NotFound(f"no website inbox {website_id}")
    required = _flag(ctx.data.get("require_identity", ""))
    await ctx.hub.inboxes.require_identity(website_id, required)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": website_id, "require_identity": required}})
    return RedirectResponse(f"/console/inboxes#identity-{website_id}", status_code=303)
