"""Email's threading (its `Locator` in the inbound pipeline).

A received message joins a ticket, in order (nothing joins by subject text alone):
1. `In-Reply-To` / `References` name a Message-ID stored or sent for a ticket;
2. it was sent to a ticket's reply address (`support+<token>@…`);
3. the subject carries `[#<ticket>]` and the sender is on that ticket.
Otherwise it opens a new ticket, with its own reply address.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.pipeline import Opening
from hub.email.inboxes import EmailInbox
from hub.email.models import Envelope, InboundEmail
from hub.models import Inbound, Message
from storage.repositories import email as mail_rows

MAX_ID = 2**31 - 1  # the store's integer keys
_TOKEN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105 (no 0/o, 1/l)
_TICKET_IN_SUBJECT = re.compile(r"\[#(\d{1,10})\]")


@dataclass(frozen=True)
class MailDelivery:
    """The payload of an email's `Inbound`: the parsed mail and how it came."""

    inbox: EmailInbox
    email: InboundEmail
    envelope: Envelope


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(10))


def safe(value: str | None, cap: int) -> str | None:
    """Text from outside as the store takes it: no NUL (PostgreSQL refuses it), capped."""
    if not value:
        return None
    return value.replace("\x00", "")[:cap]


def ticket_in_subject(subject: str | None) -> int | None:
    """The first `[#1234]` that can be a conversation id (a 32-bit key, above 0)."""
    for match in _TICKET_IN_SUBJECT.finditer(subject or ""):
        number = int(match.group(1))
        if 0 < number <= MAX_ID:
            return number
    return None


def reply_tokens(
    token_in: Callable[[str], str | None], email: InboundEmail, envelope: Envelope
) -> list[str]:
    """The ticket tokens (`token_in` reads one off an address) of the plus-addresses
    the mail was sent to: envelope, Delivered-To, To, Cc."""
    addresses = (
        *envelope.recipients,
        *email.delivered_to,
        *(a.email for a in email.to),
        *(a.email for a in email.cc),
    )
    return sorted({token for a in addresses if (token := token_in(a))})


class EmailThreading:
    async def locate(
        self, conn: AsyncConnection, inbound: Inbound, contact_id: int
    ) -> int | Opening:
        delivery: MailDelivery = inbound.payload
        inbox, email = delivery.inbox, delivery.email
        if inbound.thread_keys:
            mail = await mail_rows.latest_among(conn, inbound.thread_keys[:100], inbox_id=inbox.id)
            if mail is not None:
                return int(mail.conversation_id)
        tokens = reply_tokens(inbox.token_in, email, delivery.envelope)
        if tokens:
            found = await mail_rows.ticket_with_token(conn, inbox.id, tokens[:10])
            if found is not None:
                return int(found)
        ticket = ticket_in_subject(email.subject)
        if ticket is not None and email.sender is not None:
            row = await mail_rows.ticket_people(conn, inbox.id, ticket)
            if row is not None and (
                email.sender.email in (row.participants or []) or email.sender.email == row.email
            ):
                return ticket
        return Opening(subject=safe(email.subject, 300) or "(no subject)")

    async def opened(
        self, conn: AsyncConnection, inbound: Inbound, conversation_id: int, opening: Opening
    ) -> list[Message]:
        """A new ticket: its thread row, with the reply address's token."""
        delivery: MailDelivery = inbound.payload
        await mail_rows.insert_thread(
            conn,
            {
                "conversation_id": conversation_id,
                "email_inbox_id": delivery.inbox.id,
                "token": new_token(),
                "subject": opening.subject,
                "participants": [],
            },
        )
        return []


def referenced_ids(email: InboundEmail) -> tuple[str, ...]:
    """The Message-IDs a mail answers, the most telling first."""
    return tuple(dict.fromkeys((*email.in_reply_to, *reversed(email.references))))
