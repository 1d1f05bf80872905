"""Console pages for email: reading stored mail, files, retrying a send; the email ticket
beside a conversation. (Email inboxes, for admins: email_inboxes.py.)

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

from agent_console.access import acts, reads
from agent_console.web import Ctx, console_endpoint
from channels.http.edge import Refused
from hub.core import Hub
from hub.email.filenames import make_safe_filename
from hub.email.models import Attachment
from hub.email.ticket_reads import EmailDetails
from hub.errors import NotFound
from hub.models import Conversation

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


@console_endpoint(reads("attachment", "attachment_id"))
async def attachment(ctx: Ctx) -> Response:
    attachment_id = _id(ctx, "attachment_id")
    _conversation_id, file = await ctx.hub.email.attachment(attachment_id)
    # Made safe on the way in too; again here, whatever put the row there.
    name = make_safe_filename(file.filename, file.content_type, attachment_id)
    return download(file.data, name, file.content_type)


@console_endpoint(reads("email", "email_id"))
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


@console_endpoint(reads("email", "email_id"))
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


@console_endpoint(reads("email", "email_id"))
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


@console_endpoint(reads("conversation", "conversation_id"))
async def api_conversation_emails(ctx: Ctx) -> Response:
    """The email side of a conversation: the thread and each message's details by seq."""
    conversation = await ctx.hub.conversations.get(_id(ctx, "conversation_id"))
    view = await email_view(ctx.hub, conversation)
    return JSONResponse(
        {"email": view.to_wire() if view else None}, headers={"cache-control": "no-store"}
    )


@console_endpoint(acts("conversation", "conversation_id"))
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
