"""The console's HTTP plumbing: one wrapper around every endpoint.

`console_endpoint` does, in order: the Origin check for POSTs, the login
check (a redirect for pages, 401 JSON for fetch calls), the endpoint's access
guard (agent_console/access.py: admins only, or the inbox of the thing the path
names), the body size limit, parsing (form, JSON, or multipart for endpoints
declared `uploads=True`) and the CSRF check. It is also the one place where hub errors
become HTTP answers (with the status each `HubError` class carries; the
refusal type, capped body read and form/JSON parsing are the HTTP edge kit's,
channels/http/edge.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_console import auth
from agent_console.access import ADMIN, LISTS, Guard
from agent_console.templating import templates
from channels.http.edge import (
    Refused,
    capped_stream,
    content_type,
    form_pairs,
    json_object,
    read_capped,
)
from hub.agents.access import Access
from hub.core import Hub
from hub.errors import (
    HubError,
    InvalidInput,
    NotFound,
    TooLarge,
)
from hub.models import Agent
from hub.settings import Settings

# Forms and JSON bodies: a 20,000-character reply is at most 80 KB of UTF-8,
# or a few times that once percent-encoded; nothing legitimate comes near this.
MAX_BODY_BYTES = 256 * 1024
# A console form has a handful of fields; many more means someone is probing.
MAX_FORM_FIELDS = 50
# Files attached to one email reply: each at most 10 MB, 25 MB together (what
# common mail servers accept once base64 has added its third), at most 10.
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES_BYTES = 25 * 1024 * 1024
MAX_FILES = 10
# A multipart body is the files plus the form's few fields and part headers.
MAX_UPLOAD_BODY_BYTES = MAX_FILES_BYTES + MAX_BODY_BYTES

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def content_security_policy(public_url: str) -> str:
    """The console's CSP: sockets only to the hub's own origin (HUB_PUBLIC_URL
    with http→ws, https→wss), never to any websocket host."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self' {scheme}://{parts.netloc}; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    )


class LoginRequired(Exception):
    """No agent is logged in (or the agent was deleted)."""


class SecurityHeaders:
    """ASGI middleware adding `SECURITY_HEADERS` and the CSP to every console
    response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # By public address: the console's routes (and this middleware) may be
        # shared by several apps in one process, each with its own settings.
        self._headers: dict[str, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public_url = scope["app"].state.settings.public_url
        own = self._headers.get(public_url)
        if own is None:
            headers = {
                **SECURITY_HEADERS,
                "content-security-policy": content_security_policy(public_url),
            }
            own = self._headers[public_url] = [(k.encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in own if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- requests ----------------------------------------------------------------


@dataclass
class Ctx:
    """What an endpoint gets: the request, the agent, and the parsed body of a POST."""

    request: Request
    agent: Agent | None
    # What the agent may read and work in (LISTS and reads/acts endpoints only).
    access_of_agent: Access | None = None
    data: dict[str, Any] = field(default_factory=dict)
    is_json: bool = False
    # Files of a multipart POST (endpoints declared `uploads=True`), non-empty ones only.
    files: list[UploadFile] = field(default_factory=list)

    @property
    def hub(self) -> Hub:
        return self.request.app.state.hub

    @property
    def settings(self) -> Settings:
        return self.request.app.state.settings

    @property
    def me(self) -> Agent:
        assert self.agent is not None, "this endpoint is open to anyone (ANYONE)"
        return self.agent

    @property
    def access(self) -> Access:
        assert self.access_of_agent is not None, "only LISTS and reads/acts endpoints get access"
        return self.access_of_agent

    @property
    def wants_json(self) -> bool:
        return self.is_json or wants_json(self.request)

    def render(self, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return render(self.request, name, {"me": self.agent, **context}, status)

    def text(self, name: str, max_chars: int = 1000) -> str:
        """A string field; absent means empty, anything else is refused."""
        value = self.data.get(name, "")
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string")
        if len(value) > max_chars:
            raise TooLarge(f"{name} is longer than {max_chars} characters")
        return value


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    context.setdefault("me", None)
    context["csrf_token"] = auth.csrf_token(request)
    if context["me"] is not None:
        context["login_notice"] = auth.take_notice(request)
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers={"cache-control": "no-store"}
    )


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    content_type = request.headers.get("content-type", "")
    return (
        "application/json" in accept
        or content_type.startswith("application/json")
        or request.url.path.startswith("/console/api/")
    )


async def read_body(request: Request) -> bytes:
    """The request body, refusing (413) anything over `MAX_BODY_BYTES` without reading it all."""
    return await read_capped(request, MAX_BODY_BYTES)


def _is_multipart(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "multipart/form-data"


async def parse_multipart(request: Request) -> tuple[dict[str, Any], list[UploadFile]]:
    """Text fields and files of a multipart/form-data POST, within the upload limits.

    The body is refused (413) while it streams once it passes the total limit;
    each file is then held to the per-file limit. Empty file inputs (a form sent
    with no file chosen) are dropped.
    """
    parser = MultiPartParser(
        request.headers,
        capped_stream(
            request,
            MAX_UPLOAD_BODY_BYTES,
            f"Attachments are at most {_mb(MAX_FILES_BYTES)} together.",
        ),
        max_files=MAX_FILES,
        max_fields=MAX_FORM_FIELDS,
        max_part_size=MAX_BODY_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if "files" in exc.message.lower():
            raise Refused(400, "too_many_files", f"Attach at most {MAX_FILES} files.") from exc
        raise Refused(400, "bad_form", f"The form could not be read: {exc.message}") from exc
    data: dict[str, Any] = {}
    files: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if value.filename or value.size:
                files.append(value)
        else:
            data[name] = value
    for upload in files:
        if (upload.size or 0) > MAX_FILE_BYTES:
            await form.close()
            raise Refused(
                413,
                "too_large",
                f"{upload.filename or 'A file'} is larger than {_mb(MAX_FILE_BYTES)}.",
            )
    if sum(upload.size or 0 for upload in files) > MAX_FILES_BYTES:
        await form.close()
        raise Refused(413, "too_large", f"Attachments are at most {_mb(MAX_FILES_BYTES)} together.")
    return data, files


def _mb(size: int) -> str:
    return f"{size // (1024 * 1024)} MB"


def parse_body(request: Request, body: bytes) -> tuple[dict[str, Any], bool]:
    """(fields, is_json) from a urlencoded form (a repeated field: the last) or a
    JSON object."""
    kind = content_type(request)
    if kind == "application/json":
        return json_object(body), True
    if kind in {"application/x-www-form-urlencoded", ""}:
        return dict(form_pairs(body, MAX_FORM_FIELDS)), False
    raise Refused(415, "unsupported_media_type", "Send a form or JSON.")


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = _back_link(request)
    return RedirectResponse("/console/login?" + urlencode({"next": target}), status_code=303)


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_response(request: Request, status: int, code: str, message: str) -> Response:
    """The one way errors leave the console: JSON for fetch calls, a page otherwise."""
    if wants_json(request):
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=status,
            headers={"cache-control": "no-store"},
        )
    return render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message, "back": _back_link(request)},
        status,
    )


def _back_link(request: Request) -> str:
    """Where "Back" goes on an error page: the referring console page, if it is ours."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc.lower() == request.headers.get("host", "").lower():
        return auth.safe_next(_local_path(referer.geturl()))
    return auth.DEFAULT_NEXT


Handler = Callable[[Ctx], Awaitable[Response]]


def console_endpoint(
    access: Guard | None = None, *, admin: bool = False, uploads: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a console handler with the checks every endpoint needs (see module doc).

    `access` says who may use it (agent_console/access.py); `admin=True` is
    short for `access=ADMIN`. There is no default: an endpoint that declares
    nothing is a TypeError at import. With `uploads` a POST may also be
    multipart/form-data carrying files (`ctx.files`).
    """
    guard = ADMIN if admin else access
    if guard is None:
        raise TypeError("a console endpoint declares its access (agent_console/access.py)")

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                return await _run(request, handler, guard, uploads)
            except LoginRequired:
                if wants_json(request):
                    return error_response(request, 401, "login_required", "Log in first.")
                return login_redirect(request)
            except Refused as exc:
                return error_response(request, exc.status, exc.code, exc.message)
            except HubError as exc:
                return error_response(request, exc.status, exc.code, exc.message)

        endpoint.access = guard  # type: ignore[attr-defined]  # read by the route walk
        return endpoint

    return decorate


async def _run(request: Request, handler: Handler, guard: Guard, uploads: bool) -> Response:
    settings: Settings = request.app.state.settings
    posting = request.method == "POST"
    if posting and not auth.origin_allowed(request.headers, settings.public_url, required=False):
        raise Refused(403, "bad_origin", "This request came from another site and was refused.")
    agent = await auth.current_agent(request)
    if agent is None and guard.login_required:
        raise LoginRequired
    if guard.admin_only and (agent is None or not agent.is_admin):
        raise Refused(403, "forbidden", "Only admins can open this page.")
    ctx = Ctx(request, agent)
    # Only lists and things in inboxes read the agent's inboxes: an OWN page (an
    # avatar, shown in every list row) or an admin page costs no query for them.
    if agent is not None and (guard is LISTS or guard.kind is not None):
        ctx.access_of_agent = await _guarded(request, agent, guard)
    if posting and uploads and _is_multipart(request):
        # A fetch sends the CSRF header: a forged upload is then refused unread.
        # A plain form sends the field, which can only be checked once parsed.
        header = request.headers.get(auth.CSRF_HEADER)
        if header is not None:
            _check_csrf(request, header)
        ctx.data, ctx.files = await parse_multipart(request)
        try:
            if header is None:
                _check_csrf(request, ctx.data.get(auth.CSRF_FIELD))
            response = await handler(ctx)
            if guard.admin_only and response.status_code < 400:
                await _audit(ctx, handler)
            return response
        finally:
            for upload in ctx.files:
                await upload.close()
    if posting:
        ctx.data, ctx.is_json = parse_body(request, await read_body(request))
        _check_csrf(request, request.headers.get(auth.CSRF_HEADER) or ctx.data.get(auth.CSRF_FIELD))
    response = await handler(ctx)
    if posting and guard.admin_only and agent is not None and response.status_code < 400:
        await _audit(ctx, handler)
    return response


async def _audit(ctx: Ctx, handler: Handler) -> None:
    """An admin's change that succeeded, into the audit log (hub/audit.py)."""
    hub: Hub = ctx.request.app.state.hub
    action = handler.__name__.replace("_", " ")
    fields = {**ctx.data, **{f"file {i}": f.filename or "" for i, f in enumerate(ctx.files)}}
    await hub.audit.record(ctx.me, action, ctx.request.url.path, fields)


async def _guarded(request: Request, agent: Agent, guard: Guard) -> Access:
    """The agent's access, once the thing the path names is found in an inbox
    they may read (or work in): else NotFound / Forbidden."""
    hub: Hub = request.app.state.hub
    access = await hub.access.of(agent)
    if guard.kind is not None and guard.param is not None:
        key = request.path_params[guard.param]
        inbox_ids = await hub.access.inboxes_of(guard.kind, key)
        what = f"That {guard.kind}"
        if not inbox_ids and not access.reads_everything:
            raise NotFound(f"{what} was not found.")  # none such, or in no inbox
        if guard.kind == "contact" and not guard.act:
            # A contact reached through any of the agent's inboxes; the page then
            # shows only what happened in inboxes they may read.
            inbox_ids = {i for i in inbox_ids if access.can_read(i)} or inbox_ids
        if guard.act:
            access.check_act(inbox_ids, what)
        else:
            access.check_read(inbox_ids, what)
    return access


def _check_csrf(request: Request, presented: object) -> None:
    if not auth.csrf_matches(request, presented):
        raise Refused(
            403,
            "bad_csrf",
            "This form has expired or did not come from the console. Reload and try again.",
        )
