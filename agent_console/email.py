"""Console pages for email: email inboxes (admin), reading stored mail, retrying a send.

Stored mail is data from outside. It is only ever served back as:

- a download (`Content-Disposition: attachment`, `nosniff`, a type that cannot
  run in our origin, and a `sandbox` CSP in case a browser renders it anyway);
- sanitized HTML (hub side, nh3) on its own route with its own CSP, shown in a
  sandboxed iframe without scripts; remote images stay blocked until the agent
  asks for them (`?images=1`). `cid:` images are rewritten server-side: images
  of a viewable type become `data:` URLs, anything else points at the
  attachment route. (The frame has an opaque origin, so the browser sends it no
  SameSite session cookie and the login-checked route could not serve it.)

Any logged-in agent may read any conversation (there are no per-inbox rights
yet), but every route checks the login and unknown ids are 404.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent_console.web import Ctx, console_endpoint
from channels.http.edge import Refused
from hub.core import Hub
from hub.email.filenames import make_safe_filename
from hub.email.inboxes import EmailInbox, EmailInboxConfig, MailServer
from hub.email.models import Attachment, TlsMode
from hub.email.secrets import MailSecrets
from hub.email.ticket_reads import EmailDetails
from hub.errors import InvalidInput, NotFound
from hub.models import Channel, Conversation

# The intake URL of a new or rotated token is kept in the session for exactly
# one page view, so that it can be copied once and is never shown again.
SESSION_NEW_TOKEN = "new_intake_token"  # noqa: S105 - a session key, not a secret

# What a browser may show of an attachment when asked to; everything else is
# served as application/octet-stream. No SVG: it is a document that can script.
VIEWABLE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "application/pdf",
    }
)
# A stored file served back must never become a page of ours.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
MAX_FILENAME_CHARS = 200
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
# `src="cid:…"` in sanitized HTML (quoted or not).
_CID_SRC = re.compile(r"""(\bsrc\s*=\s*["']?)cid:([^"'\s>]+)""", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
MAX_PASSWORD_CHARS = 200

TLS_LABELS = {
    TlsMode.NONE.value: "None (plain; loopback or a local relay only)",
    TlsMode.STARTTLS.value: "STARTTLS (ports 587 / 143)",
    TlsMode.TLS.value: "TLS from the start (ports 465 / 993)",
}
ACK_PLACEHOLDERS = (
    ("{{ name }}", "the sender's name, or their address"),
    ("{{ ticket }}", "the ticket number"),
    ("{{ subject }}", "the subject of their email"),
)


# ---- files ---------------------------------------------------------------------------


def _clean_content_type(value: str | None) -> str:
    text = (value or "").split(";")[0].strip().lower()
    return text if _CONTENT_TYPE.match(text) else "application/octet-stream"


async def attachments_from(files: list[UploadFile]) -> list[Attachment]:
    """Uploaded files (already held to the size limits) as attachments to send."""
    attachments = []
    for number, upload in enumerate(files, 1):
        content_type = _clean_content_type(upload.content_type)
        attachments.append(
            Attachment(
                filename=make_safe_filename(upload.filename, content_type, number),
                content_type=content_type,
                data=await upload.read(),
            )
        )
    return attachments


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the real name per RFC 5987/6266."""
    ascii_name = (
        unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode().strip()
        or "download"
    )
    ascii_name = re.sub(r'["\\%;]', "_", ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download(data: bytes, filename: str, content_type: str) -> Response:
    served = content_type if content_type in VIEWABLE_TYPES else "application/octet-stream"
    return Response(
        data,
        media_type=served,
        headers={
            "content-disposition": content_disposition(filename),
            "x-content-type-options": "nosniff",
            "content-security-policy": DOWNLOAD_CSP,
            "cache-control": "private, no-store",
        },
    )


# ---- reading stored mail --------------------------------------------------------------


def _id(ctx: Ctx, name: str) -> int:
    return ctx.request.path_params[name]


@console_endpoint()
async def attachment(ctx: Ctx) -> Response:
    attachment_id = _id(ctx, "attachment_id")
    _conversation_id, file = await ctx.hub.email.attachment(attachment_id)
    # Made safe on the way in too; again here, whatever put the row there.
    name = make_safe_filename(file.filename, file.content_type, attachment_id)
    return download(file.data, name, file.content_type)


@console_endpoint()
async def raw_email(ctx: Ctx) -> Response:
    email_id = _id(ctx, "email_id")
    _conversation_id, data = await ctx.hub.email.raw(email_id)
    response = download(data, f"message-{email_id}.eml", "message/rfc822")
    # An .eml is a message: its own type, still only ever a download.
    response.headers["content-type"] = "message/rfc822"
    return response


def html_csp(ctx: Ctx, remote_images: bool) -> str:
    """The HTML frame's own policy: no scripts, no fetches, images only as allowed."""
    base = f"{ctx.request.url.scheme}://{ctx.request.url.netloc}"
    images = f"data: {base}/console/attachments/"
    if remote_images:
        images = f"https: http: {images}"
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        "font-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; "
        # Opened on its own (not in the console's frame) it is still no page of ours.
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def rewrite_cids(html: str, images: dict[str, str]) -> str:
    """`cid:` image references → their URL in `images` (unknown ones are left broken)."""
    known = {cid.strip("<>").lower(): url for cid, url in images.items()}

    def replace(match: re.Match[str]) -> str:
        url = known.get(unquote(match.group(2)).strip("<>").lower())
        return match.group(0) if url is None else f"{match.group(1)}{url}"

    return _CID_SRC.sub(replace, html)


async def _inline_image_urls(hub: Hub, email_id: int) -> dict[str, str]:
    """Each `cid:` of an email: a `data:` URL for a viewable image, else its download route."""
    urls: dict[str, str] = {}
    for cid, attachment_id in (await hub.email.inline_images(email_id)).items():
        _conversation_id, file = await hub.email.attachment(attachment_id)
        if file.content_type in VIEWABLE_TYPES and file.content_type.startswith("image/"):
            encoded = base64.b64encode(file.data).decode("ascii")
            urls[cid] = f"data:{file.content_type};base64,{encoded}"
        else:
            urls[cid] = f"/console/attachments/{attachment_id}"
    return urls


_FRAME_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<base target="_blank">
<style>
body {{ margin: 0; padding: 16px; color: #1c1c21; background: #fff; overflow-wrap: anywhere;
  font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", system-ui, Roboto, sans-serif; }}
img {{ max-width: 100%; height: auto; }}
blockquote {{ margin: 0 0 0 4px; padding-left: 12px; border-left: 3px solid #d9d9de;
  color: #4a4a55; }}
</style></head><body>{body}</body></html>"""


@console_endpoint()
async def email_html(ctx: Ctx) -> Response:
    email_id = _id(ctx, "email_id")
    _conversation_id, _text, html = await ctx.hub.email.body(email_id)
    if not html:
        raise NotFound(f"email {email_id} has no HTML part")
    remote = ctx.request.query_params.get("images") == "1"
    body = rewrite_cids(html, await _inline_image_urls(ctx.hub, email_id))
    return Response(
        _FRAME_PAGE.format(body=body),
        media_type="text/html",
        headers={
            "content-security-policy": html_csp(ctx, remote),
            # Framed by the console itself (the console's own pages say DENY).
            "x-frame-options": "SAMEORIGIN",
            "x-content-type-options": "nosniff",
            # Remote images, once allowed, must not learn where they are shown.
            "referrer-policy": "no-referrer",
            "cache-control": "private, no-store",
        },
    )


@console_endpoint()
async def api_email(ctx: Ctx) -> Response:
    """The full text of one email ("Show original")."""
    email_id = _id(ctx, "email_id")
    conversation_id, text, html = await ctx.hub.email.body(email_id)
    return JSONResponse(
        {
            "id": email_id,
            "conversation_id": conversation_id,
            "text": text,
            "has_html": bool(html),
        },
        headers={"cache-control": "no-store"},
    )


@console_endpoint()
async def api_conversation_emails(ctx: Ctx) -> Response:
    """The email side of a conversation: the thread and each message's details by seq."""
    conversation = await ctx.hub.conversations.get(_id(ctx, "conversation_id"))
    view = await email_view(ctx.hub, conversation)
    return JSONResponse(
        {"email": view.to_wire() if view else None}, headers={"cache-control": "no-store"}
    )


@console_endpoint()
async def retry(ctx: Ctx) -> Response:
    conversation_id = _id(ctx, "conversation_id")
    seq = _id(ctx, "seq")
    await ctx.hub.conversations.get(conversation_id)
    details = (await ctx.hub.email.details(conversation_id)).get(seq)
    if details is None or details.state is None:
        raise NotFound(f"message {seq} of conversation {conversation_id} is not an outgoing email")
    if not await ctx.hub.outbox.retry(conversation_id, seq):
        raise Refused(409, "not_failed", "This email has not failed; there is nothing to retry.")
    if ctx.wants_json:
        fresh = (await ctx.hub.email.details(conversation_id))[seq]
        return JSONResponse({"email": fresh.to_wire()})
    return RedirectResponse(f"/console/conversations/{conversation_id}", status_code=303)


# ---- an email ticket in the conversation view -----------------------------------------------


@dataclass(frozen=True)
class EmailView:
    """What the conversation page shows of an email ticket (or a chat going on by email)."""

    subject: str
    reply_address: str
    to: str | None
    cc: tuple[str, ...]
    participants: tuple[str, ...]
    details: dict[int, EmailDetails]

    def to_wire(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "reply_address": self.reply_address,
            "to": self.to,
            "cc": list(self.cc),
            "participants": list(self.participants),
            "details": {str(seq): d.to_wire() for seq, d in self.details.items()},
        }


async def email_view(hub: Hub, conversation: Conversation) -> EmailView | None:
    thread = await hub.email.thread(conversation.id)
    if thread is None:
        return None
    participants = tuple(thread["participants"])
    # Who a reply goes to, as the hub addresses it (hub.email.replies, EmailReplies.reply_by_email).
    to = conversation.contact_email or (participants[0] if participants else None)
    return EmailView(
        subject=thread["subject"],
        reply_address=thread["reply_address"],
        to=to,
        cc=tuple(p for p in participants if p != to),
        participants=participants,
        details=await hub.email.details(conversation.id),
    )


# ---- email inboxes (admin) -------------------------------------------------------------


FORM_FIELDS = (
    "name",
    "address",
    "display_name",
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "smtp_user",
    "smtp_password_env",
    "imap_host",
    "imap_port",
    "imap_tls",
    "imap_user",
    "imap_password_env",
    "imap_folder",
    "signature",
    "auto_ack_subject",
    "auto_ack_template",
)
# Generous bounds against junk; the hub holds each field to its real limit.
MAX_FIELD_CHARS = 20_000


def _form_from(inbox: EmailInbox) -> dict[str, Any]:
    """The edit form's values for a stored inbox (never a password)."""

    def env(server: MailServer) -> str:
        ref = server.password_ref or ""
        return ref[4:] if ref.startswith("env:") else ""

    return {
        "name": inbox.name,
        "address": inbox.address,
        "display_name": inbox.display_name or "",
        "smtp_host": inbox.smtp.host or "",
        "smtp_port": str(inbox.smtp.port or ""),
        "smtp_tls": inbox.smtp.tls.value,
        "smtp_user": inbox.smtp.user or "",
        "smtp_password_env": env(inbox.smtp),
        "imap_enabled": inbox.imap_enabled,
        "imap_host": inbox.imap.host or "",
        "imap_port": str(inbox.imap.port or ""),
        "imap_tls": inbox.imap.tls.value,
        "imap_user": inbox.imap.user or "",
        "imap_password_env": env(inbox.imap),
        "imap_folder": inbox.imap_folder,
        "signature": inbox.signature or "",
        "auto_ack": inbox.auto_ack,
        "auto_ack_subject": inbox.auto_ack_subject,
        "auto_ack_template": inbox.auto_ack_template,
    }


def _new_form() -> dict[str, Any]:
    return {
        **dict.fromkeys(FORM_FIELDS, ""),
        "smtp_port": "587",
        "smtp_tls": TlsMode.STARTTLS.value,
        "imap_port": "993",
        "imap_tls": TlsMode.TLS.value,
        "imap_folder": "INBOX",
        "imap_enabled": False,
        "auto_ack": False,
    }


def _checked(value: object) -> bool:
    return isinstance(value, str) and value.lower() in {"1", "on", "true", "yes"}


def _read_form(ctx: Ctx) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(what was typed, for showing again; passwords, never shown; field errors)."""
    form: dict[str, Any] = {name: ctx.text(name, MAX_FIELD_CHARS) for name in FORM_FIELDS}
    form["imap_enabled"] = _checked(ctx.data.get("imap_enabled"))
    form["auto_ack"] = _checked(ctx.data.get("auto_ack"))
    passwords = {
        name: ctx.text(name, MAX_FIELD_CHARS) for name in ("smtp_password", "imap_password")
    }
    for prefix in ("smtp", "imap"):
        form[f"{prefix}_password_remove"] = _checked(ctx.data.get(f"{prefix}_password_remove"))
    errors: dict[str, str] = {}
    for name in ("smtp_port", "imap_port"):
        value = form[name].strip()
        if value and not (value.isdigit() and 1 <= int(value) <= 65535):
            errors[name] = "Must be a port number (1-65535)."
    for name in ("smtp_password_env", "imap_password_env"):
        value = form[name].strip()
        if value and not _ENV_NAME.match(value):
            errors[name] = "Must be an environment variable name such as SMTP_PASSWORD."
    for name, value in passwords.items():
        if len(value) > MAX_PASSWORD_CHARS:
            errors[name] = f"Must be at most {MAX_PASSWORD_CHARS} characters."
    for name in ("smtp_tls", "imap_tls"):
        if form[name] not in TLS_LABELS:
            errors[name] = "Choose one of the listed modes."
    return form, passwords, errors


def _port(text: str) -> int | None:
    return int(text) if text.strip() else None


def _config(form: dict[str, Any], passwords: dict[str, str]) -> EmailInboxConfig:
    def server(prefix: str) -> MailServer:
        return MailServer(
            host=form[f"{prefix}_host"].strip() or None,
            port=_port(form[f"{prefix}_port"]),
            tls=TlsMode(form[f"{prefix}_tls"]),
            user=form[f"{prefix}_user"].strip() or None,
        )

    return EmailInboxConfig(
        name=form["name"],
        address=form["address"].strip(),
        display_name=form["display_name"],
        smtp=server("smtp"),
        smtp_password=passwords["smtp_password"] or None,
        smtp_password_env=form["smtp_password_env"].strip() or None,
        smtp_password_remove=form["smtp_password_remove"],
        imap_enabled=form["imap_enabled"],
        imap=server("imap"),
        imap_password=passwords["imap_password"] or None,
        imap_password_env=form["imap_password_env"].strip() or None,
        imap_password_remove=form["imap_password_remove"],
        imap_folder=form["imap_folder"],
        signature=form["signature"],
        auto_ack=form["auto_ack"],
        auto_ack_subject=form["auto_ack_subject"],
        auto_ack_template=form["auto_ack_template"],
    )


def _field_of(exc: InvalidInput) -> str:
    """The form field a hub error is about: its `field`, else the message's first word."""
    if exc.field in (*FORM_FIELDS, "smtp_password", "imap_password"):
        return exc.field
    first = exc.message.split(" ", 1)[0]
    return first if first in FORM_FIELDS else "form"


def _message(exc: InvalidInput) -> str:
    text = exc.message
    field = _field_of(exc)
    if text.startswith(field + " "):
        text = text[len(field) + 1 :]
        text = text[3:] if text.startswith("is ") else text
        text = text[:1].upper() + text[1:]
    return text.rstrip(".") + "."


def _intake_url(ctx: Ctx, token: str) -> str:
    return f"{ctx.settings.public_url}/email/inbound/{token}"


async def _list_page(ctx: Ctx) -> Response:
    new_token = ctx.request.session.pop(SESSION_NEW_TOKEN, None)
    items = []
    for inbox in await ctx.hub.email_inboxes.list():
        token = (
            new_token.get("token")
            if isinstance(new_token, dict) and new_token.get("id") == inbox.id
            else None
        )
        items.append(
            {
                "inbox": inbox,
                "intake_url": _intake_url(ctx, token) if token else None,
                "smtp_password": MailSecrets.describe(inbox.smtp.password_ref),
                "imap_password": MailSecrets.describe(inbox.imap.password_ref),
                "websites": [
                    w.name
                    for w in await ctx.hub.inboxes.list()
                    if w.channel is Channel.WEBSITE and w.email_inbox_id == inbox.id
                ],
            }
        )
    return ctx.render(
        "email_inboxes.html",
        {"nav": "email_inboxes", "items": items, "tls_labels": TLS_LABELS},
    )


async def _form_page(
    ctx: Ctx,
    inbox: EmailInbox | None,
    form: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return ctx.render(
        "email_inbox_form.html",
        {
            "nav": "email_inboxes",
            "inbox": inbox,
            "form": form,
            "errors": errors,
            "tls_labels": TLS_LABELS,
            "placeholders": ACK_PLACEHOLDERS,
            "smtp_password": MailSecrets.describe(inbox.smtp.password_ref) if inbox else "none",
            "imap_password": MailSecrets.describe(inbox.imap.password_ref) if inbox else "none",
            "saved": ctx.request.query_params.get("saved") == "1",
        },
        status,
    )


@console_endpoint(admin=True)
async def email_inboxes_page(ctx: Ctx) -> Response:
    return await _list_page(ctx)


@console_endpoint(admin=True)
async def new_email_inbox_page(ctx: Ctx) -> Response:
    return await _form_page(ctx, None, _new_form(), {})


@console_endpoint(admin=True)
async def email_inbox_page(ctx: Ctx) -> Response:
    inbox = await ctx.hub.email_inboxes.get(_id(ctx, "inbox_id"))
    return await _form_page(ctx, inbox, _form_from(inbox), {})


async def _save(ctx: Ctx, inbox: EmailInbox | None) -> Response:
    form, passwords, errors = _read_form(ctx)
    if not errors:
        try:
            config = _config(form, passwords)
            if inbox is None:
                created, token = await ctx.hub.email_inboxes.create(config)
                ctx.request.session[SESSION_NEW_TOKEN] = {"id": created.id, "token": token}
                saved = created
            else:
                saved = await ctx.hub.email_inboxes.update(inbox.id, config)
        except InvalidInput as exc:
            errors[_field_of(exc)] = _message(exc)
    if errors:
        if ctx.wants_json:
            return JSONResponse(
                {"error": {"code": "invalid", "message": "Check the fields.", "fields": errors}},
                status_code=400,
            )
        return await _form_page(ctx, inbox, form, errors, status=400)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": saved.id}}, status_code=201 if inbox is None else 200)
    if inbox is None:
        return RedirectResponse(f"/console/email-inboxes#inbox-{saved.id}", status_code=303)
    return RedirectResponse(f"/console/email-inboxes/{saved.id}?saved=1", status_code=303)


@console_endpoint(admin=True)
async def create_email_inbox(ctx: Ctx) -> Response:
    return await _save(ctx, None)


@console_endpoint(admin=True)
async def update_email_inbox(ctx: Ctx) -> Response:
    inbox = await ctx.hub.email_inboxes.get(_id(ctx, "inbox_id"))
    return await _save(ctx, inbox)


@console_endpoint(admin=True)
async def rotate_intake_token(ctx: Ctx) -> Response:
    inbox_id = _id(ctx, "inbox_id")
    token = await ctx.hub.email_inboxes.rotate_intake_token(inbox_id)
    ctx.request.session[SESSION_NEW_TOKEN] = {"id": inbox_id, "token": token}
    return RedirectResponse(f"/console/email-inboxes#inbox-{inbox_id}", status_code=303)


@console_endpoint(admin=True)
async def continue_by_email(ctx: Ctx) -> Response:
    """A website's chats continue by email from this email inbox (or none)."""
    website_id = _id(ctx, "inbox_id")
    website = await ctx.hub.inboxes.get(website_id)
    if website is None or website.channel is not Channel.WEBSITE:
        raise NotFound(f"no website inbox {website_id}")
    value = ctx.text("email_inbox_id", 12)
    if value and not value.isdigit():
        raise InvalidInput("choose an email inbox or none", "email_inbox_id")
    await ctx.hub.inboxes.continue_by_email(website_id, int(value) if value else None)
    if ctx.wants_json:
        return JSONResponse({"inbox": {"id": website_id, "email_inbox_id": value or None}})
    return RedirectResponse(f"/console/inboxes#inbox-{website_id}", status_code=303)
