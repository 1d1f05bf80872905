"""HTTP side of the voice channel: the CTI webhook and provider status callbacks.

Each request is limited (size, rate), authenticated (CTI token in the path, or
the provider's signature), parsed into a `CallEvent`, and handed to the hub.
Errors are JSON: `{"error": {"code": ..., "field": ..., "message": ...}}`
(see docs/voice.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import channels.http.route_ids  # noqa: F401 - registers {name:id}
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


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class VoiceLimits:
    """Per-process rate limits: by client address and by phone line."""

    def __init__(self) -> None:
        self.by_ip = TokenBucket(EVENTS_PER_SECOND, EVENT_BURST)
        self.by_line = TokenBucket(EVENTS_PER_SECOND, EVENT_BURST)
        self.failures = TokenBucket(FAILED_AUTH_PER_SECOND, FAILED_AUTH_BURST)

    def failed(self, ip: str, status: int, code: str, message: str) -> _Refused:
        """The refusal for a failed authentication: itself, or 429 once they pile up."""
        if not self.failures.allow(ip):
            return _Refused(429, "rate_limited", "Too many failed attempts; wait a minute.")
        return _Refused(status, code, message)


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def _limits(request: Request) -> VoiceLimits:
    state = request.app.state
    limits = getattr(state, "voice_limits", None)
    if limits is None:
        limits = state.voice_limits = VoiceLimits()
    return limits


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _Refused(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refused(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(400, "bad_form", "The form could not be read.") from exc


def _fields(request: Request, body: bytes) -> dict[str, Any]:
    """JSON object or urlencoded form; repeated form fields (`user[]`) become lists."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise _Refused(400, "bad_json", "The body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise _Refused(400, "bad_json", "The body must be a JSON object.")
        return data
    if content_type in {"application/x-www-form-urlencoded", ""}:
        fields: dict[str, Any] = {}
        for name, value in _form_pairs(body):
            if name in fields:
                previous = fields[name]
                fields[name] = (
                    [*previous, value] if isinstance(previous, list) else [previous, value]
                )
            else:
                fields[name] = [value] if name.endswith("[]") else value
        return fields
    raise _Refused(415, "unsupported_media_type", "Send JSON or a urlencoded form.")


Handler = Callable[[Request, Hub, VoiceLimits, str], Awaitable[dict[str, Any]]]


def _voice_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The per-address rate limit, and refusals and bad input as JSON errors."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        limits = _limits(request)
        ip = _client(request)
        try:
            if not limits.by_ip.allow(ip):
                raise _Refused(429, "rate_limited", "Too many requests; slow down.")
            return JSONResponse(await handler(request, request.app.state.hub, limits, ip))
        except _Refused as exc:
            return _error(exc.status, exc.code, exc.message, exc.field)
        except InvalidInput as exc:
            return _error(422, exc.code, exc.message, exc.field)

    return endpoint


def _line_limit(limits: VoiceLimits, line: PhoneLine) -> None:
    if not limits.by_line.allow(str(line.inbox_id)):
        raise _Refused(429, "rate_limited", "Too many events for this line; slow down.")


@_voice_endpoint
async def cti_webhook(request: Request, hub: Hub, limits: VoiceLimits, ip: str) -> dict[str, Any]:
    token = request.path_params["token"]
    line = await hub.phone_lines.by_cti_token(token) if len(token) <= 100 else None
    if line is None:
        raise limits.failed(
            ip, 401, "bad_token", "Unknown CTI token. Copy the URL from the console."
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
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"application/x-www-form-urlencoded", ""}:
        raise _Refused(415, "unsupported_media_type", "Status callbacks are forms.")
    pairs = _form_pairs(body)
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
