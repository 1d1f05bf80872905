"""Console pages of website inboxes (admins): the list, add, edit (origins, widget
look and words, pre-chat form, identity verification), "test this site", archive.

The form is read in website_form.py; the hub validates and saves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.web import Ctx, console_endpoint
from agent_console.website_form import WebsiteForm, choices, read_form
from hub.errors import InvalidInput, NotFound
from hub.inboxes.service import normalize_origin
from hub.inboxes.site_check import SiteCheck, check_site
from hub.models import Channel, Inbox

_ON = {"1", "on", "true", "yes"}
_OFF = {"", "0", "off", "false", "no"}


def snippet(public_url: str, site_token: str | None) -> str:
    """The script tag a site owner pastes into their pages."""
    return f'<script src="{public_url}/widget.js" data-site="{site_token}" async></script>'


def _flag(value: object) -> bool:
    """A checkbox (absent means off) or a JSON boolean; anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _ON | _OFF:
        return value.lower() in _ON
    raise InvalidInput("require_identity must be on or off", "require_identity")


async def _website(ctx: Ctx) -> Inbox:
    """The path's website inbox (archived ones too: their page stays readable)."""
    website_id = ctx.request.path_params["inbox_id"]
    website = await ctx.hub.inboxes.get(website_id)
    if website is None or website.channel is not Channel.WEBSITE:
        raise NotFound(f"no website inbox {website_id}")
    return website


@console_endpoint(admin=True)
async def websites_page(ctx: Ctx) -> Response:
    websites = [i for i in await ctx.hub.inboxes.list() if i.channel is Channel.WEBSITE]
    items = [
        {"inbox": inbox, "snippet": snippet(ctx.settings.public_url, inbox.site_token)}
        for inbox in websites
    ]
    return ctx.render("inboxes.html", {"nav": "inboxes", "inboxes": items})


async def _form_page(
    ctx: Ctx,
    inbox: Inbox | None,
    form: WebsiteForm,
    status: int = 200,
    checks: list[SiteCheck] | None = None,
) -> Response:
    context: dict[str, Any] = {
        "nav": "inboxes",
        "inbox": inbox,
        "form": form.values,
        "errors": form.errors,
        "saved": ctx.request.query_params.get("saved") == "1",
        "checks": checks,
        **choices(),
    }
    if inbox is not None:
        context["snippet"] = snippet(ctx.settings.public_url, inbox.site_token)
        context["email_inboxes"] = await ctx.hub.email_inboxes.list()
    return ctx.render("website_form.html", context, status)


@console_endpoint(admin=True)
async def new_website_page(ctx: Ctx) -> Response:
    return await _form_page(ctx, None, WebsiteForm.new())


@console_endpoint(admin=True)
async def website_page(ctx: Ctx) -> Response:
    inbox = await _website(ctx)
    return await _form_page(ctx, inbox, WebsiteForm.of(inbox))


async def _save(ctx: Ctx, inbox: Inbox | None) -> Response:
    if inbox is not None and inbox.archived:
        raise InvalidInput("this website inbox is archived; its settings are kept as they were")
    form, values = read_form(ctx)
    if values is None:
        if ctx.wants_json:
            return JSONResponse(
                {
                    "error": {
                        "code": "invalid",
                        "message": "Check the fields.",
                        "fields": form.errors,
                    }
                },
                status_code=400,
            )
        return await _form_page(ctx, inbox, form, status=400)
    if inbox is None:
        saved = await ctx.hub.inboxes.create_website(
            values.name, values.allowed_origins, values.require_identity, widget=values.widget
        )
    else:
        saved = await ctx.hub.inboxes.update_website(
            inbox.id, values.name, values.allowed_origins, values.require_identity, values.widget
        )
    if ctx.wants_json:
        return JSONResponse(
            {
                "inbox": {
                    "id": saved.id,
                    "site_token": saved.site_token,
                    "allowed_origins": list(saved.allowed_origins),
                    "snippet": snippet(ctx.settings.public_url, saved.site_token),
                }
            },
            status_code=201 if inbox is None else 200,
        )
    return RedirectResponse(f"/console/inboxes/{saved.id}?saved=1", status_code=303)


@console_endpoint(admin=True)
async def create_website(ctx: Ctx) -> Response:
    return await _save(ctx, None)


@console_endpoint(admin=True)
async def update_website(ctx: Ctx) -> Response:
    return await _save(ctx, await _website(ctx))


@console_endpoint(admin=True)
async def check_website(ctx: Ctx) -> Response:
    """Fetch each allowed origin's page (or the one named): does it answer, and does it
    carry this website's snippet? Private addresses are refused (site_check.py)."""
    inbox = await _website(ctx)
    one = ctx.text("origin", 300)
    if one and normalize_origin(one) not in inbox.allowed_origins:
        raise InvalidInput("test one of this website's allowed origins", "origin")
    origins = [normalize_origin(one)] if one else list(inbox.allowed_origins)
    allow_private = ctx.settings.site_check_allow_private
    assert inbox.site_token is not None
    results = await asyncio.gather(
        *(_check(origin, inbox.site_token, allow_private) for origin in origins)
    )
    if ctx.wants_json:
        return JSONResponse({"checks": [r.to_wire() for r in results]})
    return await _form_page(ctx, inbox, WebsiteForm.of(inbox), checks=results)


async def _check(origin: str, site_token: str, allow_private: bool) -> SiteCheck:
    try:
        return await check_site(origin, site_token, allow_private=allow_private)
    except InvalidInput as exc:
        return SiteCheck(origin, False, problem=f"Refused: {exc.message}", refused=True)


@console_endpoint(admin=True)
async def archive_website(ctx: Ctx) -> Response:
    inbox = await _website(ctx)
    await ctx.hub.inboxes.archive(inbox.id, Channel.WEBSITE)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": inbox.id, "archived": True}})
    return RedirectResponse("/console/inboxes", status_code=303)


@console_endpoint(admin=True)
async def require_identity(ctx: Ctx) -> Response:
    """Turn on (or off) refusing identity claims without a valid hash on a website."""
    website = await _website(ctx)
    required = _flag(ctx.data.get("require_identity", ""))
    await ctx.hub.inboxes.require_identity(website.id, required)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": website.id, "require_identity": required}})
    return RedirectResponse(f"/console/inboxes/{website.id}#identity", status_code=303)
