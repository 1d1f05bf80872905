"""HTTP side of the voice channel: the CTI webhook and provider status callbacks.

Each request is limited (size, rate), authenticated (CTI token in the path, or
the provider's signature), parsed into a `CallEvent`, and handed to the hub.
Errors are JSON: `{"error": {"code": ..., "field": ..., "message": ...}}`
(see docs/voice.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import channels.http.route_ids  # noqa: F401 - registers {name:id}
from channels.http.edge import Refused, content_type, form_or_json, form_pairs, read_capped
from channels.voice import cti, provider
from hub.core import Hub
from hub.errors import InvalidInput
from hub.ratelimit import TokenBucket
from hub.voice.phone_lines import PhoneLine

log = logging.getLogger(__name__)

# A call event is a few hundred bytes; 64 KiB leaves room for any phone
# system's extra fields and refuses floods early.
MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 100
# A busy line makes a few events per call; 20 a second with bursts of 100 is
# far above any real switchboard and still cheap to serve.
EVENTS_PER_SECOND = 20
EVENT_BURST = 100
# Wrong tokens or signatures from one address: ten, then one every six
# seconds; further failures are answered 429, so guessing goes nowhere.
FAILED_AUTH_BURST = 10
FAILED_AUTH_PER_SECOND = 1 / 6

REJECT = {"action": "reject", "reason": "busy"}


class VoiceLimits:
    """Per-process rate limits: by client address and by phone line."""

    def __init__(self) -> None:
        self.by_ip = TokenBucket(EVENTS_PER_SECOND, EVENT_BURST)
        self.by_line = TokenBucket(EVENTS_PER_SECOND, EVENT_BURST)
        self.failures = TokenBucket(FAILED_AUTH_PER_SECOND, FAILED_AUTH_BURST)

    def failed(self, ip: str, status: int, code: str, message: str) -> Refused:
        """The refusal for a failed authentication: itself, or 429 once they pile up."""
        if not self.failures.allow(ip):
            return Refused(429, "rate_limited", "Too many failed attempts; wait a minute.")
        return Refused(status, code, message)


def _limits(request: Request) -> VoiceLimits:
    state = request.app.state
    limits = getattr(state, "voice_limits", None)
    if limits is None:
        limits = state.voice_limits = VoiceLimits()
    return limits


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _body(request: Request) -> bytes:
    return await read_capped(
        request, MAX_BODY_BYTES, f"The body is larger than {MAX_BODY_BYTES} bytes."
    )


def _fields(request: Request, body: bytes) -> dict[str, Any]:
    """JSON object or urlencoded form; repeated form fields (`user[]`) become lists."""
    return form_or_json(request, body, MAX_FORM_FIELDS)[0]


Handler = Callable[[Request, Hub, VoiceLimits, str], Awaitable[dict[str, Any]]]


def _voice_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The per-address rate limit, and refusals and bad input as JSON errors."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        limits = _limits(request)
        ip = _client(request)
        try:
            if not limits.by_ip.allow(ip):
                raise Refused(429, "rate_limited", "Too many requests; slow down.")
            return JSONResponse(await handler(request, request.app.state.hub, limits, ip))
        except Refused as exc:
            return exc.response()
        except InvalidInput as exc:  # a well-formed event with a bad field (docs/voice.md)
            return Refused.of(exc, 422).response()

    return endpoint


def _line_limit(limits: VoiceLimits, line: PhoneLine) -> None:
    if not limits.by_line.allow(str(line.inbox_id)):
        raise Refused(429, "rate_limited", "Too many events for this line; slow down.")


@_voice_endpoint
async def cti_webhook(request: Request, hub: Hub, limits: VoiceLimits, ip: str) -> dict[str, Any]:
    token = request.path_params["token"]
    line = await hub.phone_lines.by_cti_token(token) if len(token) <= 100 else None
    if line is None:
        raise limits.failed(
            ip, 401, "bad_token", "Unknown CTI token. Copy the URL from the console."
        )
    if line.inbox.archived:
        raise Refused(
            410,
            "archived",
            "This phone line is archived: it takes no call events. "
            "An admin can add a new phone line in the console.",
        )
    _line_limit(limits, line)
    fields = _fields(request, await _body(request))
    recorded = await hub.calls.record(line, cti.parse(fields))
    return REJECT if recorded.rejected else {}


def _signed_urls(request: Request) -> list[str]:
    """The URL as this server saw it, and as the public address names it (behind a proxy)."""
    query = f"?{request.url.query}" if request.url.query else ""
    public = request.app.state.settings.public_url + request.url.path + query
    return [str(request.url), public]


@_voice_endpoint
async def provider_callback(
    request: Request, hub: Hub, limits: VoiceLimits, ip: str
) -> dict[str, Any]:
    line = await hub.phone_lines.find(request.path_params["inbox_id"])
    body = await _body(request)
    if content_type(request) not in {"application/x-www-form-urlencoded", ""}:
        raise Refused(415, "unsupported_media_type", "Status callbacks are forms.")
    pairs = form_pairs(body, MAX_FORM_FIELDS)
    secret = line.provider_auth_token if line else None
    signed = secret is not None and provider.signature_valid(
        secret.get(), _signed_urls(request), pairs, request.headers.get(provider.SIGNATURE_HEADER)
    )
    if line is None or not signed:
        raise limits.failed(ip, 403, "bad_signature", "Missing or wrong X-Twilio-Signature.")
    _line_limit(limits, line)
    await hub.calls.record(line, provider.parse(dict(pairs)))
    return {}


routes = [
    Route("/voice/cti/{token}", cti_webhook, methods=["POST"]),
    Route("/voice/provider/{inbox_id:id}", provider_callback, methods=["POST"]),
]
