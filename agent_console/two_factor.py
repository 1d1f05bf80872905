"""Two-factor login in the console: each agent's Security page (set up, new recovery
codes, turn off) and the admins' page (require it for everyone, reset an agent's)."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from agent_console.access import OWN
from agent_console.two_factor_login import (
    MAX_CODE_CHARS,
    TOO_MANY,
    client_address,
    enrollment_context,
    within_limits,
)
from agent_console.web import Ctx, console_endpoint
from hub.errors import Forbidden, InvalidInput

MAX_PASSWORD_CHARS = 1024
# What the Security page says after a change (?done=...).
DONE = {
    "off": "Two-factor login is off.",
    "required": "Every agent must now use two-factor login. Those without it set it up "
    "at their next login.",
    "optional": "Two-factor login is now up to each agent.",
    "reset": "Two-factor login was reset. They set it up again at their next login "
    "(if it is required).",
}


async def _security_page(ctx: Ctx, error: str | None = None, status: int = 200) -> Response:
    state = await ctx.hub.two_factor.state(ctx.me.id)
    context: dict[str, Any] = {
        "nav": "security",
        "state": state,
        "required": await ctx.hub.two_factor.required(),
        "error": error,
        "done": DONE.get(ctx.request.query_params.get("done", "")),
    }
    if not state.enabled:
        # A refusal changes nothing: it shows a set-up already begun, never begins one.
        two_factor = ctx.hub.two_factor
        enrollment = await (two_factor.waiting(ctx.me) if error else two_factor.begin(ctx.me))
        if enrollment is not None:
            context.update(enrollment_context(enrollment))
    return ctx.render("two_factor.html", context, status)


def _codes_page(ctx: Ctx, codes: list[str], first: bool) -> Response:
    return ctx.render(
        "two_factor_codes.html", {"codes": codes, "next": "/console/security", "first": first}
    )


@console_endpoint(OWN)
async def security_page(ctx: Ctx) -> Response:
    return await _security_page(ctx)


@console_endpoint(OWN)
async def confirm(ctx: Ctx) -> Response:
    code = ctx.text("code", MAX_CODE_CHARS)
    if not await within_limits(ctx, ctx.me):
        return await _security_page(ctx, TOO_MANY, 429)
    try:
        codes = await ctx.hub.two_factor.confirm(ctx.me, code)
    except InvalidInput as exc:
        return await _security_page(ctx, exc.message, 400)
    return _codes_page(ctx, codes, first=True)


@console_endpoint(OWN)
async def new_recovery_codes(ctx: Ctx) -> Response:
    code = ctx.text("code", MAX_CODE_CHARS)
    if not await within_limits(ctx, ctx.me):
        return await _security_page(ctx, TOO_MANY, 429)
    try:
        codes = await ctx.hub.two_factor.new_recovery_codes(ctx.me, code, client_address(ctx))
    except InvalidInput as exc:
        return await _security_page(ctx, exc.message, 400)
    return _codes_page(ctx, codes, first=False)


@console_endpoint(OWN)
async def turn_off(ctx: Ctx) -> Response:
    password = ctx.text("password", MAX_PASSWORD_CHARS)
    code = ctx.text("code", MAX_CODE_CHARS)
    if not await within_limits(ctx, ctx.me):
        return await _security_page(ctx, TOO_MANY, 429)
    address = client_address(ctx)
    if await ctx.hub.agents.authenticate(ctx.me.email, password, address=address) is None:
        return await _security_page(ctx, "Your password is not right.", 400)
    try:
        await ctx.hub.two_factor.turn_off(ctx.me, code, address)
    except (InvalidInput, Forbidden) as exc:
        return await _security_page(ctx, exc.message, exc.status)
    return RedirectResponse("/console/security?done=off", status_code=303)


# ---- admins -------------------------------------------------------------------------


async def _team_page(ctx: Ctx, error: str | None = None, status: int = 200) -> Response:
    return ctx.render(
        "two_factor_admin.html",
        {
            "nav": "team_security",
            "agents": await ctx.hub.agents.list(),
            "enabled": await ctx.hub.two_factor.enabled_agent_ids(),
            "required": await ctx.hub.two_factor.required(),
            "error": error,
            "done": DONE.get(ctx.request.query_params.get("done", "")),
        },
        status,
    )


@console_endpoint(admin=True)
async def team_page(ctx: Ctx) -> Response:
    return await _team_page(ctx)


@console_endpoint(admin=True)
async def set_required(ctx: Ctx) -> Response:
    choice = ctx.text("required", 8)
    if choice not in {"on", "off"}:
        raise InvalidInput("required must be on or off", field="required")
    try:
        await ctx.hub.two_factor.set_required(ctx.me, choice == "on")
    except InvalidInput as exc:
        return await _team_page(ctx, exc.message, 400)
    done = "required" if choice == "on" else "optional"
    return RedirectResponse(f"/console/team-security?done={done}", status_code=303)


@console_endpoint(admin=True)
async def reset(ctx: Ctx) -> Response:
    agent_id: int = ctx.request.path_params["agent_id"]
    if agent_id == ctx.me.id:
        return await _team_page(
            ctx, "Your own two-factor login is on your Security page, not here.", 400
        )
    await ctx.hub.two_factor.reset(agent_id)
    return RedirectResponse("/console/team-security?done=reset", status_code=303)
