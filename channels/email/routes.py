"""Raw MIME over HTTP: `POST /email/inbound/{token}`, for mail providers' inbound routes.

The body is the message exactly as received (RFC 5322): `message/rfc822` or
`application/octet-stream`, or `multipart/form-data` with the message in a
field named `email` or `message`. The SMTP envelope, when the provider knows
it, comes in `X-Envelope-From` / `X-Envelope-To` headers or the `envelope_from`
/ `envelope_to` query parameters (comma-separated recipients).

The token in the path names the inbox (only its hash is stored); no cookies,
so no CSRF. The body is read with a cap and refused past it; the answer 200
comes only once the message is stored, so a provider that sees anything else
retries. Errors are JSON: `{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.email.intake import TooComplex, parse
from channels.http.edge import Refused, error_json, read_capped
from hub.core import Hub
from hub.email.inboxes import EmailInbox
from hub.email.models import Envelope
from hub.ratelimit import Limiter, TokenBucket

log = logging.getLogger(__name__)

RAW_TYPES = frozenset({"message/rfc822", "application/octet-stream"})
FORM_FIELDS = ("email", "message")
# Room for a form's boundaries and other fields around the message itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 100
MAX_ENVELOPE_RECIPIENTS = 50
# A busy support address gets a few messages a minute; a provider replaying a
# backlog sends faster. 10 a second with bursts of 100 per inbox (shared by
# every node) and per client address covers both and stops a flood.
MESSAGES_PER_SECOND = 10
MESSAGE_BURST = 100
# Wrong tokens from one address: ten, then one every six seconds (as voice).
FAILED_AUTH_BURST = 10
FAILED_AUTH_PER_SECOND = 1 / 6
# How long a provider should wait before retrying when the store is down.
RETRY_AFTER_SECONDS = 60


class IntakeLimits:
    def __init__(self, hub: Hub) -> None:
        self.by_ip = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST)
        self.by_inbox: Limiter = hub.limits.bucket(
            "email-intake", MESSAGES_PER_SECOND, MESSAGE_BURST
        )
        self.failures = TokenBucket(FAILED_AUTH_PER_SECOND, FAILED_AUTH_BURST)


def _limits(request: Request) -> IntakeLimits:
    state = request.app.state
    limits = getattr(state, "email_intake_limits", None)
    if limits is None:
        limits = state.email_intake_limits = IntakeLimits(state.hub)
    return limits


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return error_json(status, code, message, headers=headers)


def _too_large(cap: int) -> Refused:
    return Refused(413, "too_large", f"The message is larger than {cap} bytes.")


def _form_field(content_type: str, body: bytes) -> bytes:
    """The raw message from a multipart/form-data body (field `email` or `message`)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Refused(400, "bad_form", "The multipart body has no boundary.")
    found: dict[str, bytes] = {}
    part: dict[str, Any] = {}

    def on_part_begin() -> None:
        part.clear()
        part.update(name=None, data=bytearray(), header=b"", value=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        if part["header"].lower() == b"content-disposition":
            _, disposition = parse_options_header(part["value"])
            name = disposition.get(b"name", b"").decode("latin-1")
            part["name"] = name if name in FORM_FIELDS else None
        part["header"], part["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["name"] is not None:
            part["data"] += data[start:end]

    def on_part_end() -> None:
        if part["name"] is not None:
            found.setdefault(part["name"], bytes(part["data"]))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart's errors have no common root
        raise Refused(400, "bad_form", "The multipart body could not be read.") from exc
    for name in FORM_FIELDS:
        if name in found:
            return found[name]
    raise Refused(400, "missing_field", "Put the raw message in a form field named `email`.")


def _raw_message(request: Request, body: bytes, cap: int) -> bytes:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        raw = _form_field(content_type, body)
    elif media_type in RAW_TYPES:
        raw = body
    else:
        raise Refused(
            415,
            "unsupported_media_type",
            "Send the raw message as message/rfc822 or application/octet-stream, "
            "or in the `email` field of multipart/form-data.",
        )
    if len(raw) > cap:
        raise _too_large(cap)
    if not raw.strip():
        raise Refused(400, "empty", "The message is empty.")
    return raw


def _envelope(request: Request, inbox: EmailInbox) -> Envelope:
    """The provider's envelope, if it sent one; recipients of other inboxes are dropped."""

    def given(header: str, param: str) -> str | None:
        value = request.headers.get(header)
        return request.query_params.get(param) if value is None else value

    sender = given("x-envelope-from", "envelope_from")
    mail_from = None if sender is None else sender.strip().strip("<>").strip()[:320]
    recipients = given("x-envelope-to", "envelope_to") or ""
    owned = tuple(
        address
        for part in recipients.split(",")[:MAX_ENVELOPE_RECIPIENTS]
        if (address := part.strip().strip("<>").strip()) and inbox.owns(address)
    )
    return Envelope(recipients=owned, mail_from=mail_from)


async def _inbox(hub: Hub, token: str) -> EmailInbox | None:
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        return None
    try:
        found = await hub.email_inboxes.by_intake_token(token)
    except (SQLAlchemyError, OSError) as exc:
        log.exception("email intake: looking up the token failed")
        raise Refused(503, "unavailable", "The store is unreachable; try again later.") from exc
    return None if found is None or found.inbox.archived else found  # archived: no new mail


async def inbound_email(request: Request) -> JSONResponse:
    hub: Hub = request.app.state.hub
    limits = _limits(request)
    ip = request.client.host if request.client else "unknown"
    cap = hub.settings.mail.max_bytes
    try:
        if not limits.by_ip.allow(ip):
            raise Refused(429, "rate_limited", "Too many messages; slow down.")
        inbox = await _inbox(hub, request.path_params["token"])
        if inbox is None:
            if not limits.failures.allow(ip):
                raise Refused(429, "rate_limited", "Too many failed attempts; wait a minute.")
            raise Refused(401, "bad_token", "Unknown intake token. Copy the URL from the console.")
        if not await limits.by_inbox.allow(str(inbox.id)):
            raise Refused(429, "rate_limited", "Too many messages for this inbox; slow down.")
        body = await read_capped(
            request, cap + FORM_OVERHEAD_BYTES, f"The message is larger than {cap} bytes."
        )
        raw = _raw_message(request, body, cap)
        envelope = _envelope(request, inbox)
    except Refused as exc:
        return _error(exc.status, exc.code, exc.message)
    try:
        email = await parse(raw)
    except TooComplex as exc:
        return _error(422, "too_complex", f"The message is too complex to read: {exc}.")
    try:
        result = await hub.email.ingest(inbox, email, envelope)
    except Exception:
        log.exception("email intake: storing %s for %s failed", email.message_id, inbox.address)
        return _error(503, "unavailable", "The message could not be stored; try again later.")
    return JSONResponse(
        {"stored": True, "outcome": result.outcome, "ticket": result.conversation_id}
    )


routes = [Route("/email/inbound/{token}", inbound_email, methods=["POST"])]
