"""The second step of a two-factor login: after the right password, before the session
opens. The session meanwhile holds only a pending login (agent_console/auth.py), which
no other console page or the socket accepts.

    /console/login/code                 the app's code, or a recovery code
    /console/login/two-factor-setup     admins require two-factor and the agent has
                                        none yet: set it up, then the session opens
"""

from __future__ import annotations

import asyncio

from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from agent_console import auth, login
from agent_console.access import ANYONE
from agent_console.web import Ctx, console_endpoint
from hub.agents.two_factor import Enrollment
from hub.errors import InvalidInput
from hub.models import Agent

MAX_CODE_CHARS = 64
TOO_MANY = "Too many attempts. Wait a minute, then try again."


def client_address(ctx: Ctx) -> str:
    return ctx.request.client.host if ctx.request.client else "unknown"


async def within_limits(ctx: Ctx, agent: Agent) -> bool:
    """The login limits, for a code as for a password (agent_console/login.py): False
    past the per-address limit; else after the account's slow-down."""
    limits = login.login_limits(ctx)
    if not await limits.allow(client_address(ctx), agent.email):
        return False
    await asyncio.sleep(limits.delay(await ctx.hub.agents.recent_failed_logins(agent.email)))
    return True


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (drawn here: the console loads nothing
    from elsewhere). Only modules and our own attributes, no text from outside."""
    import segno

    code = segno.make(uri, error="m")
    return Markup(code.svg_inline(scale=5, border=3, svgclass="qr-code", omitsize=True))  # noqa: S704


def enrollment_context(enrollment: Enrollment) -> dict[str, object]:
    return {"enrollment": enrollment, "qr": qr_svg(enrollment.uri)}


async def _pending(ctx: Ctx, step: str) -> tuple[auth.PendingLogin, Agent] | None:
    pending = auth.pending_login(ctx.request)
    if pending is None or pending.step != step:
        return None
    agent = await ctx.hub.agents.get(pending.agent_id)
    # An admin may have reset or stopped requiring it meanwhile: then start again.
    if agent is None or await ctx.hub.two_factor.login_step(agent.id) != step:
        return None
    return pending, agent


def _start_again() -> Response:
    return RedirectResponse("/console/login", status_code=303)


def _code_page(ctx: Ctx, recovery: bool, error: str | None, status: int = 200) -> Response:
    return ctx.render("two_factor_login.html", {"recovery": recovery, "error": error}, status)


@console_endpoint(ANYONE)
async def code_page(ctx: Ctx) -> Response:
    if ctx.agent is not None:
        return RedirectResponse(auth.DEFAULT_NEXT, status_code=303)
    if await _pending(ctx, "code") is None:
        return _start_again()
    return _code_page(ctx, ctx.request.query_params.get("recovery") == "1", None)


@console_endpoint(ANYONE)
async def check_code(ctx: Ctx) -> Response:
    found = await _pending(ctx, "code")
    if found is None:
        return _start_again()
    pending, agent = found
    code = ctx.text("code", MAX_CODE_CHARS)
    recovery = ctx.text("recovery", 1) == "1"
    if not await within_limits(ctx, agent):
        return _code_page(ctx, recovery, TOO_MANY, 429)
    if not await ctx.hub.two_factor.check(agent.id, code, address=client_address(ctx)):
        return _code_page(ctx, recovery, "That code is not right. Try again.", 400)
    await login.finish_login(ctx, agent)
    return RedirectResponse(pending.next, status_code=303)


@console_endpoint(ANYONE)
async def setup_page(ctx: Ctx) -> Response:
    found = await _pending(ctx, "setup")
    if found is None:
        return _start_again()
    enrollment = await ctx.hub.two_factor.begin(found[1])
    return ctx.render("two_factor_enroll.html", {**enrollment_context(enrollment), "error": None})


@console_endpoint(ANYONE)
async def confirm_setup(ctx: Ctx) -> Response:
    found = await _pending(ctx, "setup")
    if found is None:
        return _start_again()
    pending, agent = found
    code = ctx.text("code", MAX_CODE_CHARS)
    error, status = TOO_MANY, 429
    if await within_limits(ctx, agent):
        try:
            codes = await ctx.hub.two_factor.confirm(agent, code)
        except InvalidInput as exc:
            error, status = exc.message, 400
        else:
            await login.finish_login(ctx, agent)
            return ctx.render(
                "two_factor_codes.html", {"codes": codes, "next": pending.next, "first": True}
            )
    enrollment = await ctx.hub.two_factor.begin(agent)
    return ctx.render(
        "two_factor_enroll.html", {**enrollment_context(enrollment), "error": error}, status
    )
