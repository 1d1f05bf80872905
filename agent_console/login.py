"""Logging in and out of the console, and the limits on login attempts."""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console import auth
from agent_console.access import ANYONE, OWN
from agent_console.web import Ctx, console_endpoint
from hub.agents.service import Deactivated
from hub.models import Agent
from hub.ratelimit import RateLimits

# Login attempts: ten in a row, then one every six seconds, per email address
# from one IP address; enough for a person who mistypes, far too slow to guess.
# Per account alone it would let anyone lock an agent out, so an account's
# failures from everywhere only slow its logins down: free for the first few,
# then a delay that doubles with each failure up to a few seconds. Wrong
# two-factor codes count the same (agent_console/two_factor_login.py).
LOGIN_BURST = 10
LOGIN_RATE_PER_SECOND = 1 / 6
LOGIN_FREE_FAILURES = 3
LOGIN_FIRST_DELAY_SECONDS = 0.25
LOGIN_MAX_DELAY_SECONDS = 3.0

MAX_EMAIL_CHARS = 254
MAX_PASSWORD_CHARS = 1024
WRONG_LOGIN = "Email or password is wrong"
# Where the second step of a two-factor login is (agent_console/two_factor_login.py).
SECOND_STEPS = {"code": "/console/login/code", "setup": "/console/login/two-factor-setup"}


class LoginLimits:
    """Login attempts per account and address (refused past the limit, across nodes),
    and the slow-down of an account's logins after its recent failures."""

    def __init__(self, limits: RateLimits) -> None:
        self.by_pair = limits.bucket("login-pair", LOGIN_RATE_PER_SECOND, LOGIN_BURST)
        self.max_delay = LOGIN_MAX_DELAY_SECONDS

    async def allow(self, ip: str, email: str) -> bool:
        return await self.by_pair.allow(f"{email} {ip}")

    def delay(self, failures: int) -> float:
        """Seconds to wait before checking a password for an account with `failures`."""
        if failures < LOGIN_FREE_FAILURES:
            return 0.0
        doublings = min(failures - LOGIN_FREE_FAILURES, 16)
        return min(self.max_delay, LOGIN_FIRST_DELAY_SECONDS * 2**doublings)


def login_limits(ctx: Ctx) -> LoginLimits:
    state = ctx.request.app.state
    limits = getattr(state, "console_login_limits", None)
    if limits is None:
        limits = state.console_login_limits = LoginLimits(ctx.hub.limits)
    return limits


@console_endpoint(ANYONE)
async def login_page(ctx: Ctx) -> Response:
    next_path = auth.safe_next(ctx.request.query_params.get("next"))
    if ctx.agent is not None:
        return RedirectResponse(next_path, status_code=303)
    return ctx.render("login.html", {"next": next_path, "email": "", "error": None})


@console_endpoint(ANYONE)
async def login(ctx: Ctx) -> Response:
    next_path = auth.safe_next(ctx.text("next", auth.MAX_NEXT_CHARS))
    email = ctx.text("email", 10_000).strip()
    password = ctx.text("password", 10_000)
    client = ctx.request.client.host if ctx.request.client else "unknown"
    limits = login_limits(ctx)
    if not await limits.allow(client, email.lower()[:MAX_EMAIL_CHARS]):
        return ctx.render(
            "login.html",
            {
                "next": next_path,
                "email": email[:MAX_EMAIL_CHARS],
                "error": "Too many login attempts. Wait a minute, then try again.",
            },
            status=429,
        )
    agent = None
    if 0 < len(email) <= MAX_EMAIL_CHARS and 0 < len(password) <= MAX_PASSWORD_CHARS:
        # Awaited, so a slowed-down account holds up only its own attempt.
        await asyncio.sleep(limits.delay(await ctx.hub.agents.recent_failed_logins(email)))
        try:
            agent = await ctx.hub.agents.authenticate(email, password, address=client)
        except Deactivated as exc:
            return ctx.render(
                "login.html",
                {"next": next_path, "email": email[:MAX_EMAIL_CHARS], "error": exc.message},
                status=403,
            )
    if agent is None:
        return ctx.render(
            "login.html",
            {"next": next_path, "email": email[:MAX_EMAIL_CHARS], "error": WRONG_LOGIN},
            status=400,
        )
    step = await ctx.hub.two_factor.login_step(agent.id)
    if step is not None:  # the session opens only after the second step
        auth.begin_second_step(ctx.request, agent, step, next_path)
        return RedirectResponse(SECOND_STEPS[step], status_code=303)
    await finish_login(ctx, agent)
    return RedirectResponse(next_path, status_code=303)


async def finish_login(ctx: Ctx, agent: Agent) -> None:
    """Open the agent's session, and tell them of failed logins since their last."""
    await auth.log_in(ctx.request, agent)
    failed = await ctx.hub.agents.take_failed_logins(agent)
    if failed is not None:
        attempts = "attempt" if failed.count == 1 else "attempts"
        auth.set_notice(
            ctx.request,
            f"{failed.count} failed login {attempts} since your last login (last from "
            f"{failed.last_from} at {failed.last_at:%Y-%m-%d %H:%M} UTC)",
        )


@console_endpoint(OWN)
async def logout(ctx: Ctx) -> Response:
    await auth.log_out(ctx.request)
    if ctx.wants_json:
        return JSONResponse({"ok": True})
    return RedirectResponse("/console/login", status_code=303)
