"""Live visitors, proactive chats, campaigns and business hours in the console.

Any logged-in agent sees live visitors and may start a chat; campaigns and
business hours are admin pages. Every POST has passed the Origin and CSRF
checks of `console_endpoint` before these handlers run.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.access import LISTS, acts, reads
from agent_console.web import Ctx, console_endpoint
from hub.errors import InvalidInput, NotFound
from hub.inboxes.business_hours import DAY_NAMES, DAYS, BusinessHours
from hub.visitors.campaigns import AUDIENCES, FIELDS, URL_MATCHES, Campaign, clean_fields

_VISITOR_ID = re.compile(r"^v_[A-Za-z0-9_-]{1,38}$")
# "09:00-12:00, 13:00-17:00" in the business hours form.
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-\u2013]\s*(\d{1,2}:\d{2})\s*$")
COMMON_TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Oslo",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
)
URL_MATCH_LABELS = {
    "exact": "is exactly",
    "prefix": "starts with",
    "wildcard": "matches (* is any text)",
}
AUDIENCE_LABELS = {"all": "All visitors", "new": "New visitors", "returning": "Returning visitors"}


def _visitor_id(ctx: Ctx) -> str:
    value = ctx.request.path_params["visitor_id"]
    if not _VISITOR_ID.match(value):
        raise NotFound("no such visitor")
    return value


# ---- live visitors ----------------------------------------------------------------


async def _online(ctx: Ctx) -> list[dict[str, Any]]:
    """The live visitors of the sites the agent may read."""
    return [v for v in await ctx.hub.tracking.online() if ctx.access.can_read(v["inbox"]["id"])]


@console_endpoint(LISTS)
async def visitors_page(ctx: Ctx) -> Response:
    online = await _online(ctx)
    return ctx.render(
        "visitors.html",
        {
            "nav": "visitors",
            "visitors": online,
            "page_data": {
                "me": {"id": ctx.me.id, "name": ctx.me.name, "role": ctx.me.role.value},
                "visitors": online,
            },
        },
    )


@console_endpoint(LISTS)
async def api_visitors(ctx: Ctx) -> Response:
    return JSONResponse({"visitors": await _online(ctx)}, headers={"cache-control": "no-store"})


@console_endpoint(reads("visitor", "visitor_id"))
async def api_visitor(ctx: Ctx) -> Response:
    view = await ctx.hub.tracking.visitor_view(_visitor_id(ctx))
    return JSONResponse(view, headers={"cache-control": "no-store"})


@console_endpoint(acts("visitor", "visitor_id"))
async def start_chat(ctx: Ctx) -> Response:
    """ "Start chat" on a live visitor: any logged-in agent."""
    visitor_id = _visitor_id(ctx)
    posted = await ctx.hub.conversations.start_proactive(
        ctx.me, visitor_id, ctx.text("text", 20_000)
    )
    await ctx.hub.tracking.refresh(visitor_id)
    if ctx.wants_json:
        return JSONResponse(
            {"conversation": posted.conversation.to_wire(), "message": posted.message.to_wire()},
            status_code=201,
        )
    return RedirectResponse(f"/console/conversations/{posted.conversation.id}", status_code=303)


# ---- campaigns (admins) ---------------------------------------------------------------


async def _campaigns_page(
    ctx: Ctx,
    form: dict[str, Any],
    editing: Campaign | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    inboxes = await ctx.hub.inboxes.list()
    hours = {inbox.id: await ctx.hub.business_hours.get(inbox.id) for inbox in inboxes}
    return ctx.render(
        "campaigns.html",
        {
            "nav": "campaigns",
            "campaigns": await ctx.hub.campaigns.list(),
            "inboxes": inboxes,
            "hours": {i: _hours_form(h) for i, h in hours.items()},
            "hours_set": {i: h is not None for i, h in hours.items()},
            "days": [(day, DAY_NAMES[day]) for day in DAYS],
            "timezones": COMMON_TIMEZONES,
            "url_matches": [(m, URL_MATCH_LABELS[m]) for m in URL_MATCHES],
            "audiences": [(a, AUDIENCE_LABELS[a]) for a in AUDIENCES],
            "form": form,
            "editing": editing,
            "error": error,
            "saved": ctx.request.query_params.get("saved") == "1",
        },
        status,
    )


def _blank_form(ctx: Ctx, inbox_id: int | None) -> dict[str, Any]:
    return {
        "inbox_id": inbox_id,
        "name": "",
        "message": "",
        "sender_name": ctx.me.name,
        "url_match": "prefix",
        "url_pattern": "/",
        "min_seconds": 20,
        "audience": "all",
        "business_hours_only": False,
        "agents_online_only": True,
        "enabled": True,
    }


def _form_of(campaign: Campaign) -> dict[str, Any]:
    return {"inbox_id": campaign.inbox_id, **{k: getattr(campaign, k) for k in FIELDS}}


def _submitted(ctx: Ctx) -> dict[str, Any]:
    """The form as typed (re-shown on an error); checkboxes are absent when off."""
    data = {**_blank_form(ctx, None), **{k: v for k, v in ctx.data.items() if k != "csrf_token"}}
    for flag in ("business_hours_only", "agents_online_only", "enabled"):
        data[flag] = data.get(flag) in (True, "on", "true", "1")
    return data


def _inbox_id(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    raise InvalidInput("choose the website inbox the campaign runs on")


@console_endpoint(admin=True)
async def campaigns_page(ctx: Ctx) -> Response:
    inboxes = await ctx.hub.inboxes.list()
    return await _campaigns_page(ctx, _blank_form(ctx, inboxes[0].id if inboxes else None))


@console_endpoint(admin=True)
async def campaign_page(ctx: Ctx) -> Response:
    campaign = await ctx.hub.campaigns.get(ctx.request.path_params["campaign_id"])
    return await _campaigns_page(ctx, _form_of(campaign), editing=campaign)


@console_endpoint(admin=True)
async def create_campaign(ctx: Ctx) -> Response:
    data = _submitted(ctx)
    try:
        campaign = await ctx.hub.campaigns.create(_inbox_id(data.get("inbox_id")), data)
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _campaigns_page(ctx, data, error=exc.message, status=400)
    if ctx.wants_json:
        return JSONResponse({"campaign": campaign.to_wire()}, status_code=201)
    return RedirectResponse("/console/campaigns?saved=1", status_code=303)


@console_endpoint(admin=True)
async def update_campaign(ctx: Ctx) -> Response:
    campaign_id = ctx.request.path_params["campaign_id"]
    editing = await ctx.hub.campaigns.get(campaign_id)
    data = _submitted(ctx)
    try:
        clean_fields(data)
        campaign = await ctx.hub.campaigns.update(campaign_id, data)
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _campaigns_page(ctx, data, editing=editing, error=exc.message, status=400)
    if ctx.wants_json:
        return JSONResponse({"campaign": campaign.to_wire()})
    return RedirectResponse("/console/campaigns?saved=1", status_code=303)


# ---- business hours (admins) -------------------------------------------------------------


def _hours_form(hours: BusinessHours | None) -> dict[str, Any]:
    if hours is None:
        return {"timezone": "UTC", **{day: "" for day in DAYS}}
    return {
        "timezone": hours.timezone,
        **{day: ", ".join(f"{a}-{b}" for a, b in hours.schedule.get(day, [])) for day in DAYS},
    }


def parse_day(text: str, day: str) -> list[list[str]]:
    """ "09:00-12:00, 13:00-17:00" -> [["09:00", "12:00"], ["13:00", "17:00"]]."""
    ranges = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.match(part)
        if not match:
            raise InvalidInput(f"{DAY_NAMES[day]}: write hours as 09:00-17:00, got {part[:20]!r}")
        ranges.append([t.zfill(5) for t in match.groups()])
    return ranges


@console_endpoint(admin=True)
async def set_hours(ctx: Ctx) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    if await ctx.hub.inboxes.get(inbox_id) is None:
        raise NotFound(f"no inbox {inbox_id}")
    schedule = {day: parse_day(ctx.text(day, 200), day) for day in DAYS}
    hours = await ctx.hub.business_hours.set(inbox_id, ctx.text("timezone", 64), schedule)
    if ctx.wants_json:
        return JSONResponse({"timezone": hours.timezone, "schedule": hours.schedule})
    return RedirectResponse("/console/campaigns?saved=1#hours", status_code=303)
