"""Console pages and the fetch endpoints behind them.

Every handler takes a `Ctx` (see `agent_console.web`): by the time it runs
the agent is logged in (unless declared otherwise), a POST has passed the
Origin and CSRF checks, and hub errors it raises become HTTP answers.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.access import LISTS, acts, reads
from agent_console.checklist import checklist_for
from agent_console.email import attachments_from, email_view
from agent_console.web import Ctx, console_endpoint
from hub.conversations.reads import Scope
from hub.errors import InvalidInput
from hub.models import Conversation, Status, Visitor, utcnow

# Same shape as the widget's client ids (docs/widget-protocol.md).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

STATUS_FILTERS = ("open", "pending", "snoozed", "resolved", "all")
SCOPES: tuple[Scope, ...] = ("mine", "unassigned", "all")
STATUS_LABELS = {
    "open": "Open",
    "pending": "Pending",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
    "all": "All",
}
SCOPE_LABELS = {"mine": "Mine", "unassigned": "Unassigned", "all": "All"}
# Snoozes that end by themselves (the worker reopens them); the plain
# "Snoozed" status lasts until the customer writes again.
SNOOZE_DURATIONS = {
    "1h": (timedelta(hours=1), "1 hour"),
    "4h": (timedelta(hours=4), "4 hours"),
    "1d": (timedelta(days=1), "1 day"),
    "3d": (timedelta(days=3), "3 days"),
    "1w": (timedelta(weeks=1), "1 week"),
}
# Pages of the visitor's trail in a conversation's side panel.
SIDE_TRAIL = 8


# ---- inbox -----------------------------------------------------------------------


def _filters(ctx: Ctx) -> tuple[str, Scope]:
    params = ctx.request.query_params
    status = params.get("status", "open")
    scope = params.get("scope", "all")
    if status not in STATUS_FILTERS:
        status = "open"
    if scope not in SCOPES:
        scope = "all"
    return status, scope  # type: ignore[return-value]


def _list_query(status: str, scope: str) -> str:
    return urlencode({"status": status, "scope": scope})


def conversation_url(conversation_id: int, status: str, scope: str) -> str:
    return f"/console/conversations/{conversation_id}?{_list_query(status, scope)}"


async def _conversations(ctx: Ctx, status: str, scope: Scope) -> list[Conversation]:
    return await ctx.hub.conversations.list_for_agent(
        ctx.me,
        status=None if status == "all" else Status(status),
        scope=scope,
        inbox_ids=ctx.access.readable,
    )


@console_endpoint(LISTS)
async def inbox(ctx: Ctx) -> Response:
    return await _inbox_page(ctx, None)


@console_endpoint(reads("conversation", "conversation_id"))
async def conversation_page(ctx: Ctx) -> Response:
    return await _inbox_page(ctx, ctx.request.path_params["conversation_id"])


async def _inbox_page(ctx: Ctx, conversation_id: int | None) -> Response:
    hub = ctx.hub
    status, scope = _filters(ctx)
    open_view: dict[str, Any] | None = None
    if conversation_id is not None:
        conversation = await hub.conversations.get(conversation_id)
        # Opening a conversation reads it: its unread count drops to zero.
        await hub.conversations.mark_read_by_agent(ctx.me, conversation.id, conversation.last_seq)
        open_view = await _open_view(ctx, conversation)
    conversations = await _conversations(ctx, status, scope)
    counts = await hub.conversations.counts_by_status(ctx.access.readable)
    counts["all"] = sum(counts.values())
    query = _list_query(status, scope)
    page_data = {
        "me": {
            "id": ctx.me.id,
            "name": ctx.me.name,
            "role": ctx.me.role.value,
            # Read by the console's notifications (sound, browser) as they come.
            "notify": {"sound": ctx.me.notify_sound, "browser": ctx.me.notify_browser},
        },
        "filter": {"status": status, "scope": scope},
        "conversations": [c.to_wire() for c in conversations],
        "open": (
            {
                "id": open_view["conversation"].id,
                "last_seq": open_view["conversation"].last_seq,
                "visitor_read_seq": open_view["conversation"].visitor_read_seq,
                "conversation": open_view["conversation"].to_wire(),
                "email": open_view["email"].to_wire() if open_view["email"] else None,
                "messages": [m.to_wire() for m in open_view["messages"]],
                "page": _current_page(open_view["visitor"]),
                "trail": [p.to_wire() for p in open_view["trail"]],
            }
            if open_view
            else None
        ),
    }
    return ctx.render(
        "inbox.html",
        {
            "nav": "inbox",
            "status": status,
            "scope": scope,
            "query": query,
            "status_filters": STATUS_FILTERS,
            "status_labels": STATUS_LABELS,
            "scopes": SCOPES,
            "scope_labels": SCOPE_LABELS,
            "counts": counts,
            "conversations": conversations,
            "open": open_view,
            "page_data": page_data,
            "statuses": [s.value for s in Status],
            "snooze_choices": [(key, label) for key, (_, label) in SNOOZE_DURATIONS.items()],
            "demo": ctx.settings.demo,
            "checklist": None if open_view else await checklist_for(hub, ctx.me.is_admin),
            # Counts help where work waits; resolved and all only ever grow.
            "counted": ("open", "pending", "snoozed"),
        },
    )


async def _open_view(ctx: Ctx, conversation: Conversation) -> dict[str, Any]:
    hub = ctx.hub
    visitor = await hub.visitors.get(conversation.visitor_id) if conversation.visitor_id else None
    return {
        "conversation": conversation,
        "messages": await hub.conversations.recent_messages(conversation.id),
        "contact": await hub.visitors.contact(conversation.contact_id),
        "visitor": visitor,
        # The visitor's latest pages, newest first (live updates: static/visitors.js).
        "trail": await hub.tracking.recent_pages(visitor.id, SIDE_TRAIL) if visitor else [],
        "inbox": await hub.inboxes.get(conversation.inbox_id),
        # An email ticket (or a chat going on by email): subject, addresses, details.
        "email": await email_view(hub, conversation),
        "agents": await hub.agents.list(),  # those who can be assigned
        "online": hub.presence.online_agent_ids(),
        # A manager reads every inbox but replies only in their own.
        "can_act": ctx.access.can_act(conversation.inbox_id),
        # A fresh id per rendered form: submitting the same form twice
        # (double click, resubmit after reload) stores one message.
        "client_id": "f-" + secrets.token_urlsafe(12),
    }


def _current_page(visitor: Visitor | None) -> dict[str, str | None] | None:
    """The page a chat's visitor was last seen on, for the side panel (static/visitors.js)."""
    if visitor is None or not visitor.last_page_url:
        return None
    return {"url": visitor.last_page_url, "title": visitor.last_page_title}


@console_endpoint(LISTS)
async def api_conversations(ctx: Ctx) -> Response:
    status, scope = _filters(ctx)
    conversations = await _conversations(ctx, status, scope)
    counts = await ctx.hub.conversations.counts_by_status(ctx.access.readable)
    counts["all"] = sum(counts.values())
    return JSONResponse(
        {
            "filter": {"status": status, "scope": scope},
            "conversations": [c.to_wire() for c in conversations],
            "counts": counts,
        },
        headers={"cache-control": "no-store"},
    )


@console_endpoint(reads("conversation", "conversation_id"))
async def api_messages(ctx: Ctx) -> Response:
    conversation_id = ctx.request.path_params["conversation_id"]
    after_text = ctx.request.query_params.get("after", "0")
    if not after_text.isdigit() or len(after_text) > 12:
        raise InvalidInput("after must be a message seq (a whole number)")
    conversation = await ctx.hub.conversations.get(conversation_id)
    messages = await ctx.hub.conversations.messages(conversation.id, after_seq=int(after_text))
    email = await email_view(ctx.hub, conversation)
    return JSONResponse(
        {
            "conversation": conversation.to_wire(),
            "email": email.to_wire() if email else None,
            "visitor_read_seq": conversation.visitor_read_seq,
            "messages": [m.to_wire() for m in messages],
            "more": bool(messages) and messages[-1].seq < conversation.last_seq,
        },
        headers={"cache-control": "no-store"},
    )


# ---- agents' actions on a conversation -----------------------------------------------


def _back_to_conversation(ctx: Ctx, conversation_id: int) -> RedirectResponse:
    status, scope = _filters(ctx)
    return RedirectResponse(conversation_url(conversation_id, status, scope), status_code=303)


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.lower() in {"1", "true", "on", "yes"}


@console_endpoint(acts("conversation", "conversation_id"), uploads=True)
async def post_message(ctx: Ctx) -> Response:
    conversation_id = ctx.request.path_params["conversation_id"]
    text = ctx.data.get("text", "")  # the hub checks it: 1-20,000 characters
    private = _flag(ctx.data.get("private")) or ctx.data.get("mode") == "note"
    client_id = ctx.data.get("client_id") or None
    if client_id is not None and not (isinstance(client_id, str) and _CLIENT_ID.match(client_id)):
        raise InvalidInput("client_id must be 1-64 letters, digits, '-' or '_'")
    posted = await ctx.hub.conversations.reply(
        ctx.me,
        conversation_id,
        text,
        client_id=client_id,
        private=private,
        attachments=await attachments_from(ctx.files),
    )
    if ctx.wants_json:
        return JSONResponse(
            {
                "message": posted.message.to_wire(),
                "conversation": posted.conversation.to_wire(),
                "duplicate": posted.duplicate,
            },
            status_code=200 if posted.duplicate else 201,
        )
    return _back_to_conversation(ctx, conversation_id)


def _assignee(ctx: Ctx) -> int | None:
    value = ctx.data.get("assignee_id")
    if value in (None, "", "none"):
        return None
    if value == "me":
        return ctx.me.id
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    raise InvalidInput("assignee_id must be an agent id, 'me' or empty")


@console_endpoint(acts("conversation", "conversation_id"))
async def assign(ctx: Ctx) -> Response:
    conversation_id = ctx.request.path_params["conversation_id"]
    conversation = await ctx.hub.conversations.assign(ctx.me, conversation_id, _assignee(ctx))
    if ctx.wants_json:
        return JSONResponse({"conversation": conversation.to_wire()})
    return _back_to_conversation(ctx, conversation_id)


@console_endpoint(acts("conversation", "conversation_id"))
async def set_status(ctx: Ctx) -> Response:
    conversation_id = ctx.request.path_params["conversation_id"]
    snooze = ctx.text("snooze", 8)
    until = None
    if snooze:
        if snooze not in SNOOZE_DURATIONS:
            raise InvalidInput(f"snooze must be one of {', '.join(SNOOZE_DURATIONS)}")
        value = Status.SNOOZED.value
        until = utcnow() + SNOOZE_DURATIONS[snooze][0]
    else:
        value = ctx.text("status", 16)
    if value not in {s.value for s in Status}:
        raise InvalidInput("status must be one of open, pending, snoozed, resolved")
    conversation = await ctx.hub.conversations.set_status(
        ctx.me, conversation_id, Status(value), snoozed_until=until
    )
    if ctx.wants_json:
        return JSONResponse({"conversation": conversation.to_wire()})
    return _back_to_conversation(ctx, conversation_id)
