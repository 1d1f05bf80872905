"""Console pages for phone calls: the call log, logging a call, phone lines, contacts.

Every handler runs inside `console_endpoint` (login, CSRF, errors → HTTP);
phone-line configuration is admin-only.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.access import LISTS, acts, reads
from agent_console.web import Ctx, console_endpoint
from hub.contacts import phones
from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.models import Call, CallFilter, Outcome, duration_text
from hub.voice.phone_lines import PhoneLine

# The CTI URL of a new or rotated token is kept in the session for exactly
# one page view, so that it can be copied once and is never shown again.
SESSION_NEW_TOKEN = "new_cti_token"  # noqa: S105 - a session key, not a secret
MAX_NUMBERS_TEXT = 20_000
# How a national number typed on a contact is read when there is no phone line yet.
DEFAULT_REGION = "US"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

OUTCOME_LABELS = {
    "answered": "Answered",
    "missed": "Missed",
    "busy": "Busy",
    "rejected": "Rejected",
    "voicemail": "Voicemail",
    "failed": "Failed",
}
VIEWS = {"all": "All calls", "callback": "Call back", "missed": "Missed", "today": "Today"}


# ---- the call log ---------------------------------------------------------------------


def _call_filter(ctx: Ctx) -> tuple[CallFilter, dict[str, str]]:
    """Filters from the query string; anything unknown is ignored, not an error."""
    params = ctx.request.query_params
    view = params.get("view", "all")
    view = view if view in VIEWS else "all"
    direction = params.get("direction", "")
    direction = direction if direction in {"in", "out"} else ""
    outcome = params.get("outcome", "")
    outcome = outcome if outcome in OUTCOME_LABELS else ""
    agent = params.get("agent", "")[:100]
    chosen = {"view": view, "direction": direction, "outcome": outcome, "agent": agent}
    return (
        CallFilter(
            direction=Direction(direction) if direction else None,
            outcome=Outcome.MISSED if view == "missed" else Outcome(outcome) if outcome else None,
            agent=agent or None,
            today=view == "today",
            call_back=view == "callback",
            inbox_ids=ctx.access.readable,
        ),
        chosen,
    )


def call_row(call: Call) -> dict[str, Any]:
    """What a call log row shows; the same shape feeds the JS (`/console/api/calls`)."""
    named = bool(call.contact_name)
    return {
        **call.to_wire(),
        "detail": " · ".join(
            part
            for part in (
                phones.display(call.number) if named else None,
                call.inbox_name,
                call.queue,
            )
            if part
        ),
        "duration_text": duration_text(call.duration_seconds) if call.answered_at else "",
        "outcome_label": OUTCOME_LABELS.get(call.outcome.value, "") if call.outcome else "",
    }


@console_endpoint(LISTS)
async def calls_page(ctx: Ctx) -> Response:
    filters, chosen = _call_filter(ctx)
    calls = await ctx.hub.calls.list(filters)
    lines = await _lines_i_work_in(ctx)
    prefill = {
        "number": ctx.request.query_params.get("number", "")[:40],
        "direction": "out",
    }
    return ctx.render(
        "calls.html",
        {
            "nav": "calls",
            "has_calls": bool(calls),
            "chosen": chosen,
            "views": VIEWS,
            "outcomes": OUTCOME_LABELS,
            "agents": await ctx.hub.calls.agents_who_answered(),
            "waiting": await ctx.hub.calls.count_waiting_for_call_back(ctx.access.readable),
            "lines": lines,
            "prefill": prefill,
            "log_open": ctx.request.query_params.get("log") == "1",
            "client_id": "f-" + secrets.token_urlsafe(12),
            "now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
            "query": urlencode({k: v for k, v in chosen.items() if v}),
            "page_data": {
                "me": {"id": ctx.me.id, "name": ctx.me.name, "role": ctx.me.role.value},
                "calls": {
                    "query": urlencode({k: v for k, v in chosen.items() if v}),
                    "rows": [call_row(c) for c in calls],
                },
            },
        },
    )


@console_endpoint(LISTS)
async def api_calls(ctx: Ctx) -> Response:
    filters, chosen = _call_filter(ctx)
    calls = await ctx.hub.calls.list(filters)
    return JSONResponse(
        {
            "filter": chosen,
            "calls": [call_row(c) for c in calls],
            "waiting": await ctx.hub.calls.count_waiting_for_call_back(ctx.access.readable),
        },
        headers={"cache-control": "no-store"},
    )


def _started_at(value: str, offset_text: str) -> datetime:
    """A datetime-local field's value in the agent's zone; `tz_offset` is the browser's
    `getTimezoneOffset()` (minutes to add for UTC; the page's script fills it in)."""
    if offset_text and not re.fullmatch(r"-?\d{1,4}", offset_text):
        raise InvalidInput("tz_offset must be minutes", "tz_offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("start must be a date and time", "start") from exc
    if moment.tzinfo is None:
        moment = (moment + timedelta(minutes=int(offset_text or 0))).replace(tzinfo=UTC)
    return moment


def _duration(value: str) -> int:
    """Seconds from `95`, `1:35` or `1:02:03`."""
    text = value.strip() or "0"
    if not re.fullmatch(r"\d{1,5}(:\d{1,2}){0,2}", text):
        raise InvalidInput("duration must be seconds or minutes:seconds, e.g. 4:30", "duration")
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


async def _lines_i_work_in(ctx: Ctx) -> list[PhoneLine]:
    return [line for line in await ctx.hub.phone_lines.list() if ctx.access.can_act(line.inbox_id)]


async def _line(ctx: Ctx, value: str) -> PhoneLine:
    """The phone line a hand-logged call is for: one the agent works in."""
    lines = await _lines_i_work_in(ctx)
    if not lines:
        raise InvalidInput("there is no phone line yet; an admin adds one under Phone lines")
    if value.isdigit():
        chosen = [line for line in lines if line.inbox_id == int(value)]
        if chosen:
            return chosen[0]
    if len(lines) == 1 and not value:
        return lines[0]
    raise InvalidInput("choose the phone line", "inbox")


@console_endpoint(LISTS)
async def log_call(ctx: Ctx) -> Response:
    direction = ctx.text("direction", 3)
    if direction not in {"in", "out"}:
        raise InvalidInput("direction must be in or out", "direction")
    outcome = ctx.text("outcome", 16)
    if outcome not in OUTCOME_LABELS:
        raise InvalidInput("choose an outcome", "outcome")
    client_id = ctx.text("client_id", 64) or "f-" + secrets.token_urlsafe(12)
    if not _CLIENT_ID.match(client_id):
        raise InvalidInput("client_id must be 1-64 letters, digits, '-' or '_'", "client_id")
    line = await _line(ctx, ctx.text("inbox", 12))
    recorded = await ctx.hub.calls.log_by_hand(
        ctx.me,
        line,
        direction=Direction(direction),
        number=ctx.text("number", 40),
        started_at=_started_at(ctx.text("start", 60), ctx.text("tz_offset", 5)),
        duration_seconds=_duration(ctx.text("duration", 20)),
        outcome=Outcome(outcome),
        notes=ctx.text("notes", 5000),
        client_id=client_id,
    )
    assert recorded.call is not None
    if ctx.wants_json:
        return JSONResponse({"call": call_row(recorded.call)}, status_code=201)
    return RedirectResponse(f"/console/conversations/{recorded.call.conversation_id}", 303)


@console_endpoint(acts("call", "call_id"))
async def called_back(ctx: Ctx) -> Response:
    call = await ctx.hub.calls.mark_called_back(ctx.me, ctx.request.path_params["call_id"])
    if ctx.wants_json:
        return JSONResponse({"call": call_row(call)})
    return RedirectResponse("/console/calls?view=callback", status_code=303)


# ---- contacts ----------------------------------------------------------------------------


@console_endpoint(reads("contact", "contact_id"))
async def contact_page(ctx: Ctx) -> Response:
    contact_id = ctx.request.path_params["contact_id"]
    hub = ctx.hub
    contact = await hub.contacts.get(contact_id)
    # Only what happened in inboxes the agent may read.
    conversations = [
        c
        for c in await hub.conversations.for_contact(contact_id)
        if ctx.access.can_read(c.inbox_id)
    ]
    calls = await hub.calls.list(CallFilter(contact_id=contact_id, inbox_ids=ctx.access.readable))
    timeline: list[dict[str, Any]] = sorted(
        [{"kind": "call", "at": c.started_at, "call": call_row(c)} for c in calls]
        + [
            {"kind": "conversation", "at": c.last_activity_at, "conversation": c}
            for c in conversations
        ],
        key=lambda item: _utc(item["at"]),
        reverse=True,
    )
    numbers = [phones.display(n) for n in await hub.contacts.phones(contact_id)]
    display_name = contact.name or contact.email or (numbers[0] if numbers else None)
    details = [n for n in numbers if n != display_name]
    if contact.email and contact.email != display_name:
        details.append(contact.email)
    known = len(calls) + len(conversations)
    return ctx.render(
        "contact.html",
        {
            "nav": "calls",
            "contact": contact,
            "display_name": display_name or f"Contact #{contact.id}",
            "subtitle": " · ".join(details) or f"{known} calls and conversations · no name yet",
            "numbers": numbers,
            "timeline": timeline,
            "saved": ctx.request.query_params.get("saved") == "1",
        },
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@console_endpoint(acts("contact", "contact_id"))
async def add_contact_phone(ctx: Ctx) -> Response:
    contact_id = ctx.request.path_params["contact_id"]
    lines = await ctx.hub.phone_lines.list()
    region = lines[0].default_region if lines else DEFAULT_REGION
    number = await ctx.hub.contacts.add_phone(contact_id, ctx.text("phone", 40), region)
    if ctx.wants_json:
        return JSONResponse({"phone": number}, status_code=201)
    return RedirectResponse(f"/console/contacts/{contact_id}?saved=1", status_code=303)


@console_endpoint(acts("contact", "contact_id"))
async def update_contact(ctx: Ctx) -> Response:
    contact_id = ctx.request.path_params["contact_id"]
    contact = await ctx.hub.contacts.update(
        contact_id, ctx.text("name", 200).strip(), ctx.text("email", 254).strip()
    )
    if ctx.wants_json:
        return JSONResponse({"contact": {"id": contact.id, "name": contact.name}})
    return RedirectResponse(f"/console/contacts/{contact_id}?saved=1", status_code=303)


# ---- phone lines (admin) ----------------------------------------------------------------


def _number_list(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


async def _lines_page(
    ctx: Ctx, form: dict[str, str], error: str | None, status: int = 200
) -> Response:
    public_url = ctx.settings.public_url
    new_token = ctx.request.session.pop(SESSION_NEW_TOKEN, None)
    lines = []
    for line in await ctx.hub.phone_lines.list():
        token = (
            new_token.get("token") if new_token and new_token.get("id") == line.inbox_id else None
        )
        lines.append(
            {
                "line": line,
                "numbers": [phones.display(n) for n in line.phone_numbers],
                "numbers_text": "\n".join(phones.display(n) for n in line.phone_numbers),
                "blocked_text": "\n".join(phones.display(n) for n in line.blocked_numbers),
                "cti_url": f"{public_url}/voice/cti/{token}" if token else None,
                "provider_url": f"{public_url}/voice/provider/{line.inbox_id}",
            }
        )
    return ctx.render(
        "phone_lines.html",
        {"nav": "phone_lines", "lines": lines, "form": form, "error": error},
        status,
    )


@console_endpoint(admin=True)
async def phone_lines_page(ctx: Ctx) -> Response:
    return await _lines_page(ctx, {"region": "US"}, None)


@console_endpoint(admin=True)
async def create_phone_line(ctx: Ctx) -> Response:
    form = {
        "name": ctx.text("name", 100),
        "numbers": ctx.text("numbers", MAX_NUMBERS_TEXT),
        "region": ctx.text("region", 2).upper(),
    }
    try:
        line, token = await ctx.hub.phone_lines.create(
            form["name"],
            _number_list(form["numbers"]),
            form["region"],
            provider_auth_token=ctx.text("provider_token", 128).strip() or None,
        )
    except InvalidInput as exc:
        if ctx.wants_json:
            raise
        return await _lines_page(ctx, form, exc.message, status=400)
    ctx.request.session[SESSION_NEW_TOKEN] = {"id": line.inbox_id, "token": token}
    return RedirectResponse(f"/console/phone-lines#line-{line.inbox_id}", status_code=303)


@console_endpoint(admin=True)
async def update_phone_line(ctx: Ctx) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    await ctx.hub.phone_lines.update(
        inbox_id,
        phone_numbers=_number_list(ctx.text("numbers", MAX_NUMBERS_TEXT)),
        default_region=ctx.text("region", 2).upper(),
        blocked_numbers=_number_list(ctx.text("blocked", MAX_NUMBERS_TEXT)),
        provider_auth_token=ctx.text("provider_token", 128).strip() or None,
    )
    return RedirectResponse(f"/console/phone-lines#line-{inbox_id}", status_code=303)


@console_endpoint(admin=True)
async def rotate_cti_token(ctx: Ctx) -> Response:
    inbox_id = ctx.request.path_params["inbox_id"]
    token = await ctx.hub.phone_lines.rotate_token(inbox_id)
    ctx.request.session[SESSION_NEW_TOKEN] = {"id": inbox_id, "token": token}
    return RedirectResponse(f"/console/phone-lines#line-{inbox_id}", status_code=303)
