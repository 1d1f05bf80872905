"""Email tickets: where each received message goes, and replies leaving by email.

Threading, in order (nothing joins a ticket by subject text alone):
1. `In-Reply-To` / `References` name a Message-ID stored or sent for a ticket;
2. the message was sent to a ticket's reply address (`support+<token>@…`);
3. the subject carries `[#<ticket>]` and the sender is on that ticket.
Otherwise it opens a new ticket. A reply to a resolved ticket reopens it; the
same Message-ID arriving twice (forward and IMAP, SMTP retry) is stored once.
Bounces are attached to the ticket they bounce from and fail its outgoing
message (delivery reports mark it delayed or delivered); a bounce of mail the
hub never sent opens no ticket and goes to the admins' log (bounce_log.py).
The hub's own mail coming back is recognised and dropped.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import Entry
from hub.conversations.pipeline import InboundPipeline, Thread
from hub.email.authentication import from_authenticated
from hub.email.bounce_log import log_unmatched
from hub.email.compose import compose, render_acknowledgement
from hub.email.inboxes import EmailInbox, EmailInboxService
from hub.email.models import Address, Envelope, InboundEmail, OutboxState
from hub.email.replies import (
    NO_REPLY,
    EmailReplies,
    attachment_rows,
    base_address,
    clean_body,
)
from hub.email.threading import MailDelivery, referenced_ids, safe
from hub.events.domain import MessageCreated
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import (
    AuthorType,
    Channel,
    Direction,
    Inbound,
    Kind,
    Message,
    Sender,
    utcnow,
)
from hub.visitors.presence import PresenceBackend
from storage.repositories import email as mail_rows
from storage.repositories import outbox as outbox_rows

log = logging.getLogger(__name__)

MAX_HTML_CHARS = 1_000_000
MAX_PARTICIPANTS = 20
# At most this many acknowledgements to one contact per hour: two auto-responders
# answering each other stop here even if both ignore Auto-Submitted.
MAX_ACKS_PER_HOUR = 3

Outcome = Literal["new", "joined", "duplicate", "own", "bounce", "unmatched"]
_NO_ENVELOPE = Envelope()


@dataclass(frozen=True)
class Ingested:
    outcome: Outcome
    conversation_id: int | None = None
    seq: int | None = None


def _message_text(email: InboundEmail) -> str:
    if email.parse_error:
        shown = clean_body(email.text) or "(nothing readable)"
        reason = email.parse_error
        return f"This message could not be read ({reason}); the original is kept.\n\n{shown}"
    return (
        clean_body(email.visible_text)
        or clean_body(email.text)
        or clean_body(email.subject)
        or "(empty message)"
    )


class EmailTicketService(EmailReplies):
    """Receiving mail (this module) and replying by email (`EmailReplies`)."""

    def __init__(
        self,
        writes: Writes,
        pipeline: InboundPipeline,
        inboxes_: EmailInboxService,
        visitor_presence: PresenceBackend,
        *,
        trusted_authserv_id: str = "",
        acks_per_inbox_per_hour: int = 30,
    ) -> None:
        super().__init__(writes, pipeline.log, inboxes_, visitor_presence)
        self._pipeline = pipeline
        # HUB_MAIL_TRUSTED_AUTHSERV_ID (empty: no acknowledgements) and
        # HUB_MAIL_ACKS_PER_INBOX_PER_HOUR.
        self._trusted_authserv_id = trusted_authserv_id
        self._acks_per_inbox_per_hour = acks_per_inbox_per_hour

    # ---- incoming ---------------------------------------------------------

    async def ingest(
        self, inbox: EmailInbox, email: InboundEmail, envelope: Envelope = _NO_ENVELOPE
    ) -> Ingested:
        """Store one received message in its ticket; publish after commit."""
        if email.sender is None and envelope.mail_from and "@" in envelope.mail_from:
            # No (readable) From header: the envelope sender is the best we know.
            email = replace(email, sender=Address(envelope.mail_from.lower()[:254]))
        message_id = email.message_id or _synthetic_id(email.raw, inbox.domain)
        async with self._writes.begin() as work:
            conn = work.conn
            earlier = await mail_rows.received(conn, inbox.id, Direction.IN.value, message_id)
            if earlier is not None:
                return Ingested("duplicate", earlier.conversation_id, earlier.seq)
            if await self._is_own(conn, message_id):
                log.info("email %s is our own mail coming back; dropped", message_id)
                return Ingested("own")
            result = None
            if email.bounce is not None:
                result = await self._attach_bounce(work, inbox, email, message_id)
                if result is None:  # about mail we never sent: logged, never a ticket
                    logged = await log_unmatched(conn, inbox.id, email, message_id)
                    return Ingested("unmatched" if logged else "duplicate")
            if result is None:  # not a bounce: a ticket like any other
                result = await self._store_in_ticket(work, inbox, email, envelope, message_id)
        return result

    async def _store_in_ticket(
        self,
        work: UnitOfWork,
        inbox: EmailInbox,
        email: InboundEmail,
        envelope: Envelope,
        message_id: str,
    ) -> Ingested:
        """Through the inbound pipeline: the sender's contact, the ticket
        (hub/email/threading.py), the one append; then the mail's own rows and,
        for a new ticket, the acknowledgement."""
        sender = email.reply_to if email.sender is None else email.sender
        inbound = Inbound(
            Channel.EMAIL,
            inbox.id,
            Sender(email=sender.email, name=safe(sender.name, 200)) if sender else Sender(),
            _message_text(email),
            dedup_key=message_id,
            thread_keys=referenced_ids(email),
            attachments=tuple(email.attachments),
            payload=MailDelivery(inbox, email, envelope),
        )
        entry = Entry.from_customer(
            inbound.text,
            AuthorType.CONTACT,
            author_name=email.sender.name or email.sender.email if email.sender else None,
        )

        async def record(conn: AsyncConnection, thread: Thread, message: Message) -> list[Message]:
            await self._add_participants(conn, thread.conversation_id, email)
            await self._store_email(
                conn, inbox, thread.conversation_id, message.seq, email, message_id
            )
            if not thread.opened:
                return []
            ack = await self._acknowledge(
                conn, inbox, thread.conversation_id, thread.contact_id, email, envelope
            )
            if ack is None:
                return []
            work.after_commit(self._wake_outbox)
            return [ack]

        received = await self._pipeline.receive(work.conn, inbound, entry, record)
        work.emit(*received.events())
        outcome: Outcome = "new" if received.thread.opened else "joined"
        return Ingested(outcome, received.conversation.id, received.message.seq)

    async def _add_participants(
        self, conn: AsyncConnection, conversation_id: int, email: InboundEmail
    ) -> None:
        """The sender and everyone they copied stay on the ticket (not our own
        addresses); an auto-responder's mail adds no one, so a vacation reply's
        address is never copied on later replies."""
        if email.automatic:
            return
        thread = await mail_rows.thread(conn, conversation_id)
        current = thread.participants if thread is not None else None
        participants = list(current or [])
        own = await mail_rows.own_addresses(conn)
        for address in (email.sender, *email.cc):
            if address is None or address.email in participants:
                continue
            base = base_address(address.email)
            if base in own or NO_REPLY.match(address.email.split("@")[0]):
                continue
            participants.append(address.email)
        participants = participants[:MAX_PARTICIPANTS]
        if participants != list(current or []):
            await mail_rows.set_participants(conn, conversation_id, participants)

    async def _store_email(
        self,
        conn: AsyncConnection,
        inbox: EmailInbox,
        conversation_id: int,
        seq: int,
        email: InboundEmail,
        message_id: str,
    ) -> int:
        return await mail_rows.insert_mail(
            conn,
            {
                "email_inbox_id": inbox.id,
                "conversation_id": conversation_id,
                "seq": seq,
                "direction": Direction.IN.value,
                "message_id": message_id,
                "in_reply_to": email.in_reply_to[0] if email.in_reply_to else None,
                "references": list(email.references),
                "from_address": safe(email.sender.email, 254) if email.sender else None,
                "from_name": safe(email.sender.name, 200) if email.sender else None,
                "to_addresses": [safe(a.email, 254) for a in email.to],
                "cc_addresses": [safe(a.email, 254) for a in email.cc],
                "subject": safe(email.subject, 300) or "",
                "text": clean_body(email.text),
                "html": safe(email.html, MAX_HTML_CHARS),
                "automatic": email.automatic,
                "parse_error": safe(email.parse_error, 300),
                "raw_size": len(email.raw),
                "created_at": utcnow(),
            },
            email.raw,
            attachment_rows(email.attachments),
        )

    async def _is_own(self, conn: AsyncConnection, message_id: str) -> bool:
        sent = await mail_rows.latest_among(conn, [message_id], direction=Direction.OUT.value)
        return sent is not None

    # ---- bounces ----------------------------------------------------------

    async def _attach_bounce(
        self, work: UnitOfWork, inbox: EmailInbox, email: InboundEmail, message_id: str
    ) -> Ingested | None:
        """Record on the outgoing message what this report says (failed, delayed,
        delivered); None if it is not ours."""
        conn = work.conn
        assert email.bounce is not None
        candidates = tuple(
            ref
            for ref in (email.bounce.original_message_id, *email.in_reply_to, *email.references)
            if ref
        )
        if not candidates:
            return None
        original = await mail_rows.latest_among(
            conn, candidates[:100], direction=Direction.OUT.value
        )
        if original is None:
            return None
        bounce = email.bounce
        reason = " ".join(part for part in (bounce.status, bounce.diagnostic) if part)
        who = bounce.recipient or "the recipient"
        if bounce.action == "failed":  # only a failure fails the reply
            reason = reason or "the receiving server refused it"
            values: dict[str, object] = {
                "state": OutboxState.FAILED.value,
                "last_error": f"bounced: {reason}"[:500],
                "claimed_by": None,
                "claimed_until": None,
            }
            text = f"Delivery of message #{original.seq} to {who} failed: {reason}"
        elif bounce.action == "delayed":
            reason = reason or "the receiving server is still trying"
            values = {"delivery": "delayed", "delivery_note": reason[:500]}
            text = f"Delivery of message #{original.seq} to {who} is delayed: {reason}"
        else:
            values = {"delivery": "delivered", "delivery_note": None}
            text = f"Message #{original.seq} was delivered to {who}"
        await outbox_rows.set_state_of_mail(conn, original.id, values)
        activity = await self._log.append(
            conn, original.conversation_id, Entry.activity(text[:1000])
        )
        await self._store_email(
            conn, inbox, original.conversation_id, activity.seq, email, message_id
        )
        conversation = await self._log.get(conn, original.conversation_id)
        work.emit(MessageCreated(conversation, activity))
        work.after_commit(
            functools.partial(self.publish_state, original.conversation_id, original.seq)
        )
        return Ingested("bounce", original.conversation_id, activity.seq)

    # ---- acknowledgements -----------------------------------------------------

    async def _acknowledge(
        self,
        conn: AsyncConnection,
        inbox: EmailInbox,
        conversation_id: int,
        contact_id: int,
        email: InboundEmail,
        envelope: Envelope,
    ) -> Message | None:
        """Tell a person their ticket exists (the acknowledgement, queued as mail);
        never an automaton (RFC 3834), never a From the trusted receiving server
        did not authenticate, never beyond the per-contact and per-inbox caps."""
        sender = email.reply_to or email.sender
        if (
            not inbox.auto_ack
            or sender is None
            or email.sender is None
            or email.automatic
            or email.bounce is not None
            or email.parse_error is not None
            or envelope.mail_from == ""
            or NO_REPLY.match(sender.email.split("@")[0])
            or base_address(sender.email) in await mail_rows.own_addresses(conn)
        ):
            return None
        if not self._authenticated(email, email.sender, sender):
            log.info("no acknowledgement to %s: From not authenticated", sender.email)
            return None
        recent = await mail_rows.opened_since(
            conn, contact_id, inbox.id, utcnow() - timedelta(hours=1)
        )
        if recent > MAX_ACKS_PER_HOUR:
            log.warning("no acknowledgement to %s: %d tickets this hour", sender.email, recent)
            return None
        sent = await mail_rows.acknowledgements_since(conn, inbox.id, utcnow() - timedelta(hours=1))
        if sent >= self._acks_per_inbox_per_hour:
            log.warning("no acknowledgement from inbox %d: %d this hour", inbox.id, sent)
            return None
        text = render_acknowledgement(
            inbox.auto_ack_template,
            name=(email.sender.name if email.sender and email.sender.name else sender.email),
            ticket=conversation_id,
            subject=email.subject,
        )
        thread = await self._thread_row(conn, conversation_id)
        outgoing = compose(
            inbox,
            conversation_id=conversation_id,
            token=thread.token,
            subject=email.subject or inbox.auto_ack_subject,
            text=text,
            to=(sender.email,),
            in_reply_to=email.message_id,
            references=(*email.references, *((email.message_id,) if email.message_id else ())),
            automatic=True,
        )
        message = await self._log.append(
            conn,
            conversation_id,
            Entry(
                Direction.OUT,
                Kind.TEXT,
                AuthorType.SYSTEM,
                clean_body(text),
                author_name="Automatic reply",
                previews=False,
            ),
        )
        await self.enqueue(conn, inbox, conversation_id, message.seq, outgoing, automatic=True)
        return message

    def _authenticated(self, email: InboundEmail, author: Address, recipient: Address) -> bool:
        """The trusted server passed the From domain, and the acknowledgement goes
        to that domain (a Reply-To elsewhere is the sender's word only)."""
        same_domain = author.email.rpartition("@")[2] == recipient.email.rpartition("@")[2]
        return same_domain and from_authenticated(
            email.authentication_results, self._trusted_authserv_id, author.email
        )


def _synthetic_id(raw: bytes, domain: str) -> str:
    """A stable id for a message without Message-ID, so its copies are stored once."""
    return f"no-id.{hashlib.sha256(raw).hexdigest()[:32]}@{domain}"
