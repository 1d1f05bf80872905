"""Email as the hub sees it: what every way in (SMTP/LMTP, IMAP, raw MIME over
HTTP) turns a message into, before `hub.email.tickets` decides where it goes.

The parser in `channels/email/parse.py` builds an `InboundEmail` from raw bytes
and never raises: a message it cannot read still arrives, with `parse_error`
set and `raw` kept, so nothing is ever dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class TlsMode(enum.StrEnum):
    """How a connection to a mail server is secured."""

    NONE = "none"  # plain (loopback, or a relay on the same machine)
    STARTTLS = "starttls"  # plain connect, then upgrade (ports 587 / 143)
    TLS = "tls"  # TLS from the first byte (ports 465 / 993)


@dataclass(frozen=True)
class Address:
    """One mailbox: `email` is the lower-cased addr-spec, `name` the display name."""

    email: str
    name: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file carried by a message; inline parts (`cid:` images) too."""

    filename: str  # safe: no path, no control characters, at most 200 chars
    content_type: str  # lower-case `type/subtype`
    data: bytes
    content_id: str | None = None  # without the angle brackets
    inline: bool = False


@dataclass(frozen=True)
class Bounce:
    """A delivery-status report (RFC 3464) or a mailer daemon's failure notice.

    A report about several recipients is told by its worst one: a failed
    recipient, else a delayed one, else a delivered one."""

    original_message_id: str | None  # the bounced message's Message-ID, no brackets
    recipient: str | None  # the address that failed
    status: str | None  # e.g. "5.1.1"
    diagnostic: str | None  # the remote server's words, one line
    # What the report says happened to the recipient it is about: "failed",
    # "delayed" (still trying) or "delivered" (also relayed/expanded onwards).
    action: str = "failed"


@dataclass(frozen=True)
class InboundEmail:
    """One received message, normalized. Message-IDs are stored without `<>`."""

    raw: bytes
    message_id: str | None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    sender: Address | None = None  # From (first mailbox)
    reply_to: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    # Delivered-To / X-Original-To / Envelope-To headers (IMAP and HTTP intake
    # have no SMTP envelope; plus-addresses survive here).
    delivered_to: tuple[str, ...] = ()
    subject: str = ""
    date: datetime | None = None
    text: str = ""  # the whole plain-text body (from HTML when there is no text part)
    visible_text: str = ""  # `text` with quoted earlier replies and signature folded away
    html: str | None = None  # sanitized HTML (nh3), safe to show in a sandboxed frame
    attachments: tuple[Attachment, ...] = ()
    # Auto-Submitted other than "no", Precedence bulk/junk/list, X-Autoreply,
    # X-Auto-Response-Suppress, List-* headers: never auto-acknowledged.
    automatic: bool = False
    # Authentication-Results header values, top first (hub/email/authentication.py
    # trusts only the receiving server's own): acknowledgements need a pass.
    authentication_results: tuple[str, ...] = ()
    bounce: Bounce | None = None
    parse_error: str | None = None  # set when the MIME could not be read; raw is kept
    headers: dict[str, str] = field(default_factory=dict)  # a few, for display/debugging

    @property
    def participants(self) -> tuple[str, ...]:
        """Every address on the message (From, Reply-To, To, Cc), lower case."""
        found: list[str] = []
        for address in (self.sender, self.reply_to, *self.to, *self.cc):
            if address is not None and address.email not in found:
                found.append(address.email)
        return tuple(found)


@dataclass(frozen=True)
class Envelope:
    """What the transport knows beyond the message: SMTP's MAIL FROM and RCPT TO.

    `mail_from` is "" for the null return path (`MAIL FROM:<>`, used by bounces)
    and None where the transport has no envelope (IMAP, HTTP intake).
    """

    recipients: tuple[str, ...] = ()
    mail_from: str | None = None
