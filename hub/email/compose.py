"""Outgoing mail as bytes: an agent's reply or an automatic acknowledgement,
with plain-text and HTML alternatives from Jinja2 templates, threading headers
and attachments. The bytes are stored in the outbox and sent as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from hub.email.inboxes import EmailInbox
from hub.email.models import Attachment
from hub.models import utcnow

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "email"),
    autoescape=jinja2.select_autoescape(["html"]),
    keep_trailing_newline=True,
    trim_blocks=True,
)
# Admins write the acknowledgement template in the console: it runs sandboxed.
_ADMIN_TEMPLATES = SandboxedEnvironment(autoescape=False)
MAX_REFERENCES = 20
_REPLY_PREFIXES = ("re:", "aw:", "sv:", "antw:", "réf:", "ref:")


@dataclass(frozen=True)
class Outgoing:
    """A composed message: its bytes and what the store keeps about it."""

    raw: bytes
    message_id: str  # without brackets
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str


def new_message_id(inbox: EmailInbox) -> str:
    return make_msgid(idstring="hub", domain=inbox.domain).strip("<>")


def ticket_subject(subject: str, conversation_id: int) -> str:
    """`Re: <subject> [#1234]`, without piling up prefixes or tokens."""
    base = subject.strip() or "Your request"
    while base.lower().startswith(_REPLY_PREFIXES):
        base = base.split(":", 1)[1].strip()
    token = f"[#{conversation_id}]"
    base = base.replace(token, "").strip()
    return f"Re: {base} {token}"


def compose(
    inbox: EmailInbox,
    *,
    conversation_id: int,
    token: str,
    subject: str,
    text: str,
    to: tuple[str, ...],
    cc: tuple[str, ...] = (),
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    attachments: tuple[Attachment, ...] = (),
    author_name: str | None = None,
    quoted: str | None = None,
    quoted_intro: str | None = None,
    automatic: bool = False,
) -> Outgoing:
    message_id = new_message_id(inbox)
    chain = tuple(dict.fromkeys(references + ((in_reply_to,) if in_reply_to else ())))
    chain = chain[-MAX_REFERENCES:]
    full_subject = ticket_subject(subject, conversation_id)
    context = {
        "text": text,
        "paragraphs": [block.splitlines() for block in text.split("\n\n") if block.strip()],
        "signature": inbox.signature,
        "quoted": quoted,
        "quoted_intro": quoted_intro,
    }
    plain = _TEMPLATES.get_template("reply.txt").render(context).strip() + "\n"
    html = _TEMPLATES.get_template("reply.html").render(context)

    message = EmailMessage(policy=SMTP)
    sender_name = inbox.display_name or inbox.name
    if author_name and not automatic:
        sender_name = f"{author_name} ({sender_name})"
    message["From"] = formataddr((sender_name, inbox.address))
    message["Reply-To"] = formataddr((inbox.display_name or inbox.name, inbox.reply_address(token)))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = full_subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    if chain:
        message["References"] = " ".join(f"<{ref}>" for ref in chain)
    if automatic:
        # RFC 3834: an automatic reply, which no responder should answer.
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
        message["Precedence"] = "auto_reply"
    message.set_content(plain)
    message.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return Outgoing(
        raw=message.as_bytes(),
        message_id=message_id,
        subject=full_subject,
        to=to,
        cc=cc,
        in_reply_to=in_reply_to,
        references=chain,
        text=plain,
    )


def render_acknowledgement(template: str, *, name: str, ticket: int, subject: str) -> str:
    """The admin's acknowledgement text with {{ name }}, {{ ticket }}, {{ subject }}."""
    try:
        return _ADMIN_TEMPLATES.from_string(template).render(
            name=name, ticket=ticket, subject=subject
        )
    except jinja2.TemplateError:
        # A template broken after it was saved still acknowledges, plainly.
        return f"Hello {name},\n\nWe received your message (ticket #{ticket})."
