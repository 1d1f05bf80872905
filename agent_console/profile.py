""" "Your profile": every agent's own name, picture, password and notification
settings, and the availability they choose in the console's header."""

from __future__ import annotations

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console import auth
from agent_console.access import OWN
from agent_console.login import MAX_PASSWORD_CHARS
from agent_console.web import Ctx, console_endpoint
from hub.agents.avatars import MAX_AVATAR_BYTES
from hub.errors import InvalidInput
from hub.models import Agent, Availability

MAX_NAME_CHARS = 100

_NOTICES = {
    "name": "Your name is saved.",
    "avatar": "Your picture is saved.",
    "avatar-removed": "Your picture was removed.",
    "password": "Your password is changed; your other sessions were signed out.",
    "notifications": "Your notification settings are saved.",
}


def _checkbox(ctx: Ctx, name: str) -> bool:
    value = ctx.data.get(name, "")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"", "0", "off", "false", "on", "1", "true"}:
        return value.lower() in {"on", "1", "true"}
    raise InvalidInput(f"{name} must be on or off", name)


async def _page(
    ctx: Ctx, me: Agent, *, error: str | None = None, field: str | None = None, status: int = 200
) -> Response:
    done = ctx.request.query_params.get("done", "")
    return ctx.render(
        "profile.html",
        {
            "nav": "profile",
            "me": me,
            "notice": None if error else _NOTICES.get(done),
            "error": error,
            "error_field": field,
            "max_avatar_mb": MAX_AVATAR_BYTES // (1024 * 1024),
        },
        status,
    )


def _done(ctx: Ctx, what: str, me: Agent) -> Response:
    if ctx.wants_json:
        return JSONResponse(
            {
                "agent": {
                    "id": me.id,
                    "name": me.name,
                    "notify_sound": me.notify_sound,
                    "notify_browser": me.notify_browser,
                    "availability": me.availability.value,
                }
            }
        )
    return RedirectResponse(f"/console/profile?done={what}", status_code=303)


async def _refused(ctx: Ctx, exc: InvalidInput) -> Response:
    if ctx.wants_json:
        raise exc
    return await _page(ctx, ctx.me, error=exc.message, field=exc.field, status=400)


@console_endpoint(OWN)
async def profile_page(ctx: Ctx) -> Response:
    return await _page(ctx, ctx.me)


@console_endpoint(OWN)
async def set_name(ctx: Ctx) -> Response:
    try:
        me = await ctx.hub.accounts.set_profile(ctx.me, ctx.text("name", MAX_NAME_CHARS))
    except InvalidInput as exc:
        return await _refused(ctx, exc)
    return _done(ctx, "name", me)


@console_endpoint(OWN, uploads=True)
async def set_avatar(ctx: Ctx) -> Response:
    if ctx.data.get("remove"):
        return _done(ctx, "avatar-removed", await ctx.hub.accounts.set_avatar(ctx.me, None))
    if len(ctx.files) != 1:
        return await _refused(ctx, InvalidInput("Choose one picture to upload.", "avatar"))
    upload = ctx.files[0]
    # Read one byte past the limit: enough to know it is too large.
    data = await upload.read(MAX_AVATAR_BYTES + 1)
    try:
        me = await ctx.hub.accounts.set_avatar(ctx.me, data)
    except InvalidInput as exc:
        return await _refused(ctx, exc)
    return _done(ctx, "avatar", me)


@console_endpoint(OWN)
async def change_password(ctx: Ctx) -> Response:
    current = ctx.text("current_password", MAX_PASSWORD_CHARS)
    new = ctx.text("password", MAX_PASSWORD_CHARS)
    try:
        if new != ctx.text("confirm", MAX_PASSWORD_CHARS) and not ctx.is_json:
            raise InvalidInput("The two new passwords differ.", "confirm")
        token = ctx.request.session.get(auth.SESSION_TOKEN)
        assert isinstance(token, str)  # a logged-in request has one
        await ctx.hub.accounts.change_password(ctx.me, current, new, token)
    except InvalidInput as exc:
        return await _refused(ctx, exc)
    return _done(ctx, "password", ctx.me)


@console_endpoint(OWN)
async def set_notifications(ctx: Ctx) -> Response:
    me = await ctx.hub.accounts.set_notifications(
        ctx.me, sound=_checkbox(ctx, "sound"), browser=_checkbox(ctx, "browser")
    )
    return _done(ctx, "notifications", me)


@console_endpoint(OWN)
async def set_availability(ctx: Ctx) -> Response:
    """Online, busy or offline, from the header's menu (fetch) or its form."""
    value = ctx.text("availability", 16)
    if value not in {a.value for a in Availability}:
        raise InvalidInput(
            f"availability must be one of {', '.join(a.value for a in Availability)}",
            "availability",
        )
    me = await ctx.hub.accounts.set_availability(ctx.me, Availability(value))
    if ctx.wants_json:
        return JSONResponse({"availability": me.availability.value})
    return RedirectResponse(auth.safe_next(ctx.text("next", auth.MAX_NEXT_CHARS)), status_code=303)
