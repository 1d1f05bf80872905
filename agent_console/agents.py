"""The team pages (admins): the agents list, inviting, adding, editing,
deactivating, reactivating, deleting and resetting passwords; and the
invitation link an invitee opens to set their password.

The rules (the last admin, history, sessions ending) are the hub's
(hub/agents/accounts.py); these handlers read forms and draw pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console import auth
from agent_console.access import ANYONE, OWN
from agent_console.login import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS
from agent_console.web import Ctx, console_endpoint
from hub.agents.presence import availability_of
from hub.errors import InvalidInput, NotFound
from hub.models import Agent, Role

MAX_NAME_CHARS = 100
# An invitation token is a few dozen characters; this leaves room and no more.
MAX_TOKEN_CHARS = 400


def agent_wire(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "email": agent.email,
        "role": agent.role.value,
        "active": agent.active,
        "invited": agent.invited,
    }


def _role(ctx: Ctx) -> Role:
    value = ctx.text("role", 16) or Role.AGENT.value
    if value not in {r.value for r in Role}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}", "role")
    return Role(value)


def _agent_id(ctx: Ctx) -> int:
    agent_id: int = ctx.request.path_params["agent_id"]
    return agent_id


def invitation_url(ctx: Ctx, token: str) -> str:
    return f"{ctx.settings.public_url}/console/join?{urlencode({'token': token})}"


# ---- the list ------------------------------------------------------------------


async def _agents_page(
    ctx: Ctx,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    invite_error: str | None = None,
    notice: str | None = None,
    mail_problem: str | None = None,
    invitation: str | None = None,
    status: int = 200,
) -> Response:
    agents = await ctx.hub.agents.list(everyone=True)
    online = ctx.hub.presence.online_agent_ids()
    return ctx.render(
        "agents.html",
        {
            "nav": "agents",
            "agents": agents,
            "availability": {a.id: availability_of(a, online).value for a in agents},
            "online": online,
            "roles": [r.value for r in Role],
            "form": form or {"role": Role.AGENT.value},
            "error": error,
            "invite_error": invite_error,
            "notice": notice,
            "mail_problem": mail_problem,
            "invitation": invitation,
        },
        status,
    )


@console_endpoint(admin=True)
async def agents_page(ctx: Ctx) -> Response:
    notice = None
    done = ctx.request.query_params.get("done", "")
    if done in _DONE:
        notice = _DONE[done]
    return await _agents_page(ctx, notice=notice)


_DONE = {
    "created": "The agent can now log in with the password you gave them.",
    "deleted": "The agent was deleted.",
}


@console_endpoint(admin=True)
async def create_agent(ctx: Ctx) -> Response:
    form = {
        "name": ctx.text("name", MAX_NAME_CHARS),
        "email": ctx.text("email", MAX_EMAIL_CHARS),
        "role": ctx.text("role", 16) or Role.AGENT.value,
    }
    password = ctx.text("password", MAX_PASSWORD_CHARS)
    try:
        agent = await ctx.hub.agents.create(form["email"], form["name"], password, _role(ctx))
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _agents_page(ctx, form=form, error=exc.message, status=400)
    if ctx.wants_json:
        return JSONResponse({"agent": agent_wire(agent)}, status_code=201)
    return RedirectResponse("/console/agents?done=created", status_code=303)


@console_endpoint(admin=True)
async def invite_agent(ctx: Ctx) -> Response:
    """Invite by email: the invitee sets their own password from a single-use link,
    which the admin is shown to copy."""
    form = {
        "name": ctx.text("name", MAX_NAME_CHARS),
        "email": ctx.text("email", MAX_EMAIL_CHARS),
        "role": ctx.text("role", 16) or Role.AGENT.value,
    }
    try:
        agent, token = await ctx.hub.accounts.invite(
            ctx.me, form["email"], form["name"], _role(ctx)
        )
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _agents_page(ctx, form=form, invite_error=exc.message, status=400)
    link = invitation_url(ctx, token)
    not_mailed = await ctx.hub.invitation_mail.send(agent, ctx.me, link)
    if ctx.wants_json:
        return JSONResponse(
            {"agent": agent_wire(agent), "link": link, "emailed": not_mailed is None},
            status_code=201,
        )
    mailed = f"An email with this link went to {agent.email}. " if not_mailed is None else ""
    return await _agents_page(
        ctx,
        notice=f"{agent.name} is invited. {mailed}The link works once, for 7 days.",
        mail_problem=not_mailed,
        invitation=link,
    )


# ---- one agent ------------------------------------------------------------------


async def _agent_page(
    ctx: Ctx,
    agent: Agent,
    *,
    error: str | None = None,
    notice: str | None = None,
    mail_problem: str | None = None,
    invitation: str | None = None,
    status: int = 200,
) -> Response:
    return ctx.render(
        "agent.html",
        {
            "nav": "agents",
            "agent": agent,
            "availability": availability_of(agent, ctx.hub.presence.online_agent_ids()).value,
            "roles": [r.value for r in Role],
            "error": error,
            "notice": notice,
            "mail_problem": mail_problem,
            "invitation": invitation,
        },
        status,
    )


async def _the_agent(ctx: Ctx) -> Agent:
    agent_id = _agent_id(ctx)
    agent = await ctx.hub.agents.get(agent_id)
    if agent is None:
        raise NotFound(f"no agent {agent_id}")
    return agent


_NOTICES = {
    "saved": "Saved.",
    "deactivated": "Deactivated: they were signed out everywhere and their open "
    "conversations went back to the unassigned queue.",
    "reactivated": "Reactivated: they can log in again.",
    "password": "Password reset: they were signed out everywhere.",
}


@console_endpoint(admin=True)
async def agent_page(ctx: Ctx) -> Response:
    done = ctx.request.query_params.get("done", "")
    return await _agent_page(ctx, await _the_agent(ctx), notice=_NOTICES.get(done))


async def _acting(
    ctx: Ctx, action: str, run: Callable[[Agent], Awaitable[Agent | None]]
) -> Response:
    """Run an admin action on the agent; a refusal is shown on their page (400)."""
    agent = await _the_agent(ctx)
    try:
        updated = await run(agent)
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _agent_page(ctx, agent, error=exc.message, status=400)
    if ctx.wants_json:
        return JSONResponse({"agent": agent_wire(updated) if updated else None})
    if action == "deleted":
        return RedirectResponse("/console/agents?done=deleted", status_code=303)
    return RedirectResponse(f"/console/agents/{agent.id}?done={action}", status_code=303)


@console_endpoint(admin=True)
async def update_agent(ctx: Ctx) -> Response:
    name = ctx.text("name", MAX_NAME_CHARS)
    email = ctx.text("email", MAX_EMAIL_CHARS)
    role = _role(ctx)
    return await _acting(
        ctx,
        "saved",
        lambda agent: ctx.hub.accounts.update(ctx.me, agent.id, name=name, email=email, role=role),
    )


@console_endpoint(admin=True)
async def deactivate_agent(ctx: Ctx) -> Response:
    return await _acting(
        ctx, "deactivated", lambda agent: ctx.hub.accounts.deactivate(ctx.me, agent.id)
    )


@console_endpoint(admin=True)
async def reactivate_agent(ctx: Ctx) -> Response:
    return await _acting(
        ctx, "reactivated", lambda agent: ctx.hub.accounts.reactivate(ctx.me, agent.id)
    )


@console_endpoint(admin=True)
async def delete_agent(ctx: Ctx) -> Response:
    return await _acting(ctx, "deleted", lambda agent: ctx.hub.accounts.delete(ctx.me, agent.id))


@console_endpoint(admin=True)
async def reset_password(ctx: Ctx) -> Response:
    password = ctx.text("password", MAX_PASSWORD_CHARS)

    async def run(agent: Agent) -> Agent:
        await ctx.hub.accounts.reset_password(ctx.me, agent.id, password)
        return agent

    return await _acting(ctx, "password", run)


@console_endpoint(admin=True)
async def reinvite_agent(ctx: Ctx) -> Response:
    """A fresh link for an agent who has not joined yet; the old one stops working."""
    agent = await _the_agent(ctx)
    if not agent.invited:
        raise InvalidInput(f"{agent.name} has already joined")
    _, token = await ctx.hub.accounts.invite(ctx.me, agent.email, agent.name, agent.role)
    link = invitation_url(ctx, token)
    not_mailed = await ctx.hub.invitation_mail.send(agent, ctx.me, link)
    if ctx.wants_json:
        return JSONResponse(
            {"agent": agent_wire(agent), "link": link, "emailed": not_mailed is None}
        )
    return await _agent_page(
        ctx,
        agent,
        notice="A new link: the earlier one no longer works.",
        mail_problem=not_mailed,
        invitation=link,
    )


@console_endpoint(OWN)
async def avatar(ctx: Ctx) -> Response:
    """An agent's picture, for every logged-in agent (the header, the lists)."""
    picture = await ctx.hub.accounts.avatar(_agent_id(ctx))
    return Response(
        picture.data,
        media_type=picture.content_type,
        # The URL carries the picture's version (?v=), so it may be kept.
        headers={"cache-control": "private, max-age=86400"},
    )


# ---- the invitee -----------------------------------------------------------------


def _token(ctx: Ctx, value: str | None) -> str:
    if not value or len(value) > MAX_TOKEN_CHARS:
        raise InvalidInput("This invitation link is not valid.")
    return value


@console_endpoint(ANYONE)
async def join_page(ctx: Ctx) -> Response:
    token = _token(ctx, ctx.request.query_params.get("token"))
    invitee = await ctx.hub.accounts.invited(token)
    return ctx.render("join.html", {"invitee": invitee, "token": token, "error": None})


@console_endpoint(ANYONE)
async def join(ctx: Ctx) -> Response:
    token = _token(ctx, ctx.text("token", 10_000))  # too long: "not valid", below
    password = ctx.text("password", MAX_PASSWORD_CHARS)
    invitee = await ctx.hub.accounts.invited(token)
    if password != ctx.text("confirm", MAX_PASSWORD_CHARS):
        return ctx.render(
            "join.html",
            {"invitee": invitee, "token": token, "error": "The two passwords differ."},
            400,
        )
    try:
        agent = await ctx.hub.accounts.accept(token, password)
    except InvalidInput as exc:
        return ctx.render(
            "join.html", {"invitee": invitee, "token": token, "error": exc.message}, 400
        )
    await auth.log_in(ctx.request, agent)
    return RedirectResponse(auth.DEFAULT_NEXT, status_code=303)
