"""Teams and who works in which inbox (admins): `/console/teams`.

The decisions are hub/agents/access.py's; this page only edits what they read:
teams and their members, and per inbox whether it is open to every agent or
to its members (agents and teams) only.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from agent_console.access import ADMIN
from agent_console.web import Ctx, console_endpoint
from hub.errors import InvalidInput, NotFound

MAX_IDS = 500


def _ids(ctx: Ctx, field: str) -> list[int]:
    """Ids chosen by checkboxes named `agent-4` (a form keeps one value per
    name), or a JSON list under `agent`."""
    value = ctx.data.get(field)
    if value is None:
        prefix = field + "-"
        value = [key[len(prefix) :] for key in ctx.data if key.startswith(prefix)]
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise InvalidInput(f"{field} must be a list of ids", field)
    ids = []
    for item in value:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or len(text) > 10:
            raise InvalidInput(f"{field} must be a list of ids", field)
        ids.append(int(text))
    return ids


async def _page(ctx: Ctx, error: str | None = None, status: int = 200) -> Response:
    hub = ctx.hub
    agents = await hub.agents.list()
    teams = await hub.access.teams()
    inboxes: list[dict[str, Any]] = []
    for inbox in await hub.inboxes.list():
        members = await hub.access.inbox_members(inbox.id, inbox.members_only)
        inboxes.append({"inbox": inbox, "members": members})
    return ctx.render(
        "teams.html",
        {
            "nav": "teams",
            "agents": agents,
            "names": {a.id: a.name for a in agents},
            "teams": teams,
            "inboxes": inboxes,
            "error": error,
            "saved": ctx.request.query_params.get("saved"),
        },
        status,
    )


@console_endpoint(ADMIN)
async def teams_page(ctx: Ctx) -> Response:
    return await _page(ctx)


def _back(ctx: Ctx, saved: str) -> Response:
    return RedirectResponse(f"/console/teams?saved={saved}", status_code=303)


@console_endpoint(ADMIN)
async def create_team(ctx: Ctx) -> Response:
    await ctx.hub.access.create_team(ctx.text("name", 100), _ids(ctx, "agent"))
    return _back(ctx, "team")


@console_endpoint(ADMIN)
async def update_team(ctx: Ctx) -> Response:
    team_id = ctx.request.path_params["team_id"]
    if ctx.data.get("delete"):
        await ctx.hub.access.delete_team(team_id)
        return _back(ctx, "deleted")
    await ctx.hub.access.update_team(team_id, ctx.text("name", 100), _ids(ctx, "agent"))
    return _back(ctx, "team")


@console_endpoint(ADMIN)
async def set_inbox_members(ctx: Ctx) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    if not await ctx.hub.access.inboxes_of("inbox", inbox_id):
        raise NotFound("That inbox was not found.")
    who = ctx.text("who", 16)
    if who not in {"everyone", "members"}:
        raise InvalidInput("who must be everyone or members", "who")
    await ctx.hub.access.set_inbox_members(
        inbox_id, who == "members", _ids(ctx, "agent"), _ids(ctx, "team")
    )
    return _back(ctx, "inbox")
