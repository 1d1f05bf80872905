"""Email tickets: where each received message goes, and replies leaving by email.

Threading, in order (nothing joins a ticket by subject text alone):
1. `In-Reply-To` / `References` name a Message-ID stored or sent for a ticket;
2. the message was sent to a ticket's reply address (`support+<token>@…`);
3. the subject carries `[#<ticket>]` and the sender is on that ticket.
Otherwise it opens a new ticket. A reply to a resolved ticket reopens it; the
same Message-ID arriving twice (forward and IMAP, SMTP retry) is stored once.
Bounces are attached to the ticket they bounce from and fail its outgoing
message; the hub's own mail coming back is recognised and dropped.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import Entry
from hub.conversations.pipeline import InboundPipeline, Thread
from hub.email.compose import Outgoing, compose, render_acknowledgement
from hub.email.inboxes import EmailInbox, EmailInboxService
from hub.email.models import Address, Attachment, Envelope, InboundEmail, OutboxState
from hub.email.threading import MailDelivery, new_token, referenced_ids, safe
from hub.email.ticket_reads import EmailTicketReads
from hub.errors import InvalidInput
from hub.events import topics
from hub.events.domain import MessageCreated
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import (
    AuthorType,
    Channel,
    Conversation,
    Direction,
    Inbound,
    Kind,
    Message,
    Sender,
    utcnow,
)
from hub.visitors.presence import PresenceBackend
from storage.tables import (
    conversations,
    email_attachments,
    email_inboxes,
    email_messages,
    email_outbox,
    email_raw,
    email_threads,
    inboxes,
)

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 100_000
MAX_HTML_CHARS = 1_000_000
MAX_PARTICIPANTS = 20
# At most this many acknowledgements to one contact per hour: two auto-responders
# answering each other stop here even if both ignore Auto-Submitted.
MAX_ACKS_PER_HOUR = 3
_NO_REPLY = re.compile(r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?)([+.-]|$)")

Outcome = Literal["new", "joined", "duplicate", "own", "bounce"]
_NO_ENVELOPE = Envelope()


@dataclass(frozen=True)
class Ingested:
    outcome: Outcome
    conversation_id: int | None = None
    seq: int | None = None


def _clean_body(text: str) -> str:
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text.replace("\r\n", "\n")).strip()
    return text[:MAX_TEXT_CHARS]


def _message_text(email: InboundEmail) -> str:
    if email.parse_error:
        shown = _clean_body(email.text) or "(nothing readable)"
        reason = email.parse_error
        return f"This message could not be read ({reason}); the original is kept.\n\n{shown}"
    return (
        _clean_body(email.visible_text)
        or _clean_body(email.text)
        or _clean_body(email.subject)
        or "(empty message)"
    )


class EmailTicketService(EmailTicketReads):
    def __init__(
        self,
        writes: Writes,
        pipeline: InboundPipeline,
        inboxes_: EmailInboxService,
        visitor_presence: PresenceBackend,
    ) -> None:
        super().__init__(writes.db, inboxes_)
        self._writes = writes
        self._bus = writes.publisher.bus
        self._pipeline = pipeline
        self._log = pipeline.log
        self._visitor_presence = visitor_presence
        # Called after a commit that queued mail (the outbox sender wakes up).
        self.on_queued: Callable[[], Awaitable[None]] = _nothing

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
            earlier = (
                await conn.execute(
                    sa.select(email_messages.c.conversation_id, email_messages.c.seq)
                    .where(email_messages.c.email_inbox_id == inbox.id)
                    .where(email_messages.c.direction == Direction.IN.value)
                    .where(email_messages.c.message_id == message_id)
                )
            ).first()
            if earlier is not None:
                return Ingested("duplicate", earlier.conversation_id, earlier.seq)
            if await self._is_own(conn, message_id):
                log.info("email %s is our own mail coming back; dropped", message_id)
                return Ingested("own")
            result = None
            if email.bounce is not None:
                result = await self._attach_bounce(work, inbox, email, message_id)
            if result is None:  # not a bounce of ours: a ticket like any other
                result = await self._store_in_ticket(work, inbox, email, envelope, message_id)
        return result

    async def _wake_outbox(self) -> None:
        await self.on_queued()

    async def publish_state(self, conversation_id: int, seq: int) -> None:
        """Tell consoles an outgoing message's delivery state (queued, sent, failed)."""
        details = (await self.details(conversation_id)).get(seq)
        if details is not None:
            await self._bus.publish(
                topics.AGENTS,
                {"type": "email", "conversation_id": conversation_id, "email": details.to_wire()},
            )

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
        """The sender and everyone they copied stay on the ticket (not our own addresses)."""
        current = await conn.scalar(
            sa.select(email_threads.c.participants).where(
                email_threads.c.conversation_id == conversation_id
            )
        )
        participants = list(current or [])
        own = await self._own_addresses(conn)
        for address in (email.sender, *email.cc):
            if address is None or address.email in participants:
                continue
            base = _base_address(address.email)
            if base in own or _NO_REPLY.match(address.email.split("@")[0]):
                continue
            participants.append(address.email)
        participants = participants[:MAX_PARTICIPANTS]
        if participants != list(current or []):
            await conn.execute(
                email_threads.update()
                .where(email_threads.c.conversation_id == conversation_id)
                .values(participants=participants)
            )

    async def _own_addresses(self, conn: AsyncConnection) -> set[str]:
        return set((await conn.scalars(sa.select(email_inboxes.c.address))).all())

    async def _store_email(
        self,
        conn: AsyncConnection,
        inbox: EmailInbox,
        conversation_id: int,
        seq: int,
        email: InboundEmail,
        message_id: str,
    ) -> int:
        email_id = await conn.scalar(
            email_messages.insert()
            .values(
                email_inbox_id=inbox.id,
                conversation_id=conversation_id,
                seq=seq,
                direction=Direction.IN.value,
                message_id=message_id,
                in_reply_to=email.in_reply_to[0] if email.in_reply_to else None,
                references=list(email.references),
                from_address=safe(email.sender.email, 254) if email.sender else None,
                from_name=safe(email.sender.name, 200) if email.sender else None,
                to_addresses=[safe(a.email, 254) for a in email.to],
                cc_addresses=[safe(a.email, 254) for a in email.cc],
                subject=safe(email.subject, 300) or "",
                text=_clean_body(email.text),
                html=safe(email.html, MAX_HTML_CHARS),
                automatic=email.automatic,
                parse_error=safe(email.parse_error, 300),
                raw_size=len(email.raw),
                created_at=utcnow(),
            )
            .returning(email_messages.c.id)
        )
        await conn.execute(email_raw.insert().values(email_message_id=email_id, data=email.raw))
        await self._store_attachments(conn, email_id, email.attachments)
        return email_id

    async def _store_attachments(
        self, conn: AsyncConnection, email_id: int, attachments: Sequence[Attachment]
    ) -> None:
        if attachments:
            await conn.execute(
                email_attachments.insert(),
                [
                    {
                        "email_message_id": email_id,
                        "filename": a.filename[:200],
                        "content_type": a.content_type[:100],
                        "size": len(a.data),
                        "content_id": a.content_id[:250] if a.content_id else None,
                        "inline": a.inline,
                        "data": a.data,
                    }
                    for a in attachments
                ],
            )

    async def _is_own(self, conn: AsyncConnection, message_id: str) -> bool:
        return (
            await conn.scalar(
                sa.select(email_messages.c.id)
                .where(email_messages.c.direction == Direction.OUT.value)
                .where(email_messages.c.message_id == message_id)
                .limit(1)
            )
        ) is not None

    # ---- bounces ----------------------------------------------------------

    async def _attach_bounce(
        self, work: UnitOfWork, inbox: EmailInbox, email: InboundEmail, message_id: str
    ) -> Ingested | None:
        """Fail the outgoing message this bounce reports on; None if it is not ours."""
        conn = work.conn
        assert email.bounce is not None
        candidates = tuple(
            ref
            for ref in (email.bounce.original_message_id, *email.in_reply_to, *email.references)
            if ref
        )
        if not candidates:
            return None
        original = (
            await conn.execute(
                sa.select(
                    email_messages.c.id, email_messages.c.conversation_id, email_messages.c.seq
                )
                .where(email_messages.c.direction == Direction.OUT.value)
                .where(email_messages.c.message_id.in_(candidates[:100]))
                .order_by(email_messages.c.id.desc())
                .limit(1)
            )
        ).first()
        if original is None:
            return None
        bounce = email.bounce
        reason = (
            " ".join(part for part in (bounce.status, bounce.diagnostic) if part)
            or "the receiving server refused it"
        )
        who = bounce.recipient or "the recipient"
        await conn.execute(
            email_outbox.update()
            .where(email_outbox.c.email_message_id == original.id)
            .values(
                state=OutboxState.FAILED.value,
                last_error=f"bounced: {reason}"[:500],
                claimed_by=None,
                claimed_until=None,
            )
        )
        activity = await self._log.append(
            conn,
            original.conversation_id,
            Entry.activity(f"Delivery of message #{original.seq} to {who} failed: {reason}"[:1000]),
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
        never an automaton (RFC 3834)."""
        sender = email.reply_to or email.sender
        if (
            not inbox.auto_ack
            or sender is None
            or email.automatic
            or email.bounce is not None
            or email.parse_error is not None
            or envelope.mail_from == ""
            or _NO_REPLY.match(sender.email.split("@")[0])
            or _base_address(sender.email) in await self._own_addresses(conn)
        ):
            return None
        recent = (
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(conversations)
                .where(conversations.c.contact_id == contact_id)
                .where(conversations.c.inbox_id == inbox.id)
                .where(conversations.c.created_at > utcnow() - timedelta(hours=1))
            )
            or 0
        )
        if recent > MAX_ACKS_PER_HOUR:
            log.warning("no acknowledgement to %s: %d tickets this hour", sender.email, recent)
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
                _clean_body(text),
                author_name="Automatic reply",
                previews=False,
            ),
        )
        await self._enqueue(conn, inbox, conversation_id, message.seq, outgoing, automatic=True)
        return message

    # ---- outgoing -----------------------------------------------------------

    async def reply_by_email(
        self,
        work: UnitOfWork,
        conversation: Conversation,
        message: Message,
        attachments: Sequence[Attachment],
        author_name: str | None,
    ) -> bool:
        """Inside the reply's unit of work (a reply hook): queue the reply as email
        when the conversation is an email ticket, or a web chat whose visitor has
        left an email address and is not on the site; False when it is neither."""
        conn = work.conn
        thread = await self._thread_row(conn, conversation.id, missing_ok=True)
        if thread is None:
            thread = await self._continue_chat_by_email(conn, conversation)
        if thread is None:
            return False
        inbox = await self._inboxes.get(thread.email_inbox_id)
        last_in = (
            await conn.execute(
                sa.select(
                    email_messages.c.message_id,
                    email_messages.c.references,
                    email_messages.c.from_address,
                    email_messages.c.from_name,
                    email_messages.c.text,
                    email_messages.c.created_at,
                )
                .where(email_messages.c.conversation_id == conversation.id)
                .where(email_messages.c.direction == Direction.IN.value)
                .order_by(email_messages.c.seq.desc())
                .limit(1)
            )
        ).first()
        participants = list(thread.participants or [])
        customer = conversation.contact_email or (participants[0] if participants else None)
        if customer is None:
            raise InvalidInput("this conversation has no email address to reply to")
        to = (customer,)
        cc = tuple(p for p in participants if p != customer)
        references: tuple[str, ...] = ()
        in_reply_to = None
        quoted = quoted_intro = None
        if last_in is not None:
            in_reply_to = last_in.message_id
            references = (*tuple(last_in.references or ()), last_in.message_id)
            quoted = (last_in.text or "")[:5000]
            who = last_in.from_name or last_in.from_address or "you"
            quoted_intro = f"On {last_in.created_at:%a, %d %b %Y %H:%M} UTC, {who} wrote:"
        else:
            previous = await conn.scalar(
                sa.select(email_messages.c.message_id)
                .where(email_messages.c.conversation_id == conversation.id)
                .order_by(email_messages.c.seq.desc())
                .limit(1)
            )
            in_reply_to = previous
            references = (previous,) if previous else ()
        outgoing = compose(
            inbox,
            conversation_id=conversation.id,
            token=thread.token,
            subject=thread.subject,
            text=message.text,
            to=to,
            cc=cc,
            in_reply_to=in_reply_to,
            references=references,
            attachments=tuple(attachments),
            author_name=author_name,
            quoted=quoted,
            quoted_intro=quoted_intro,
        )
        await self._enqueue(
            conn, inbox, conversation.id, message.seq, outgoing, attachments=attachments
        )
        work.after_commit(functools.partial(self.publish_state, conversation.id, message.seq))
        work.after_commit(self._wake_outbox)
        return True

    async def _continue_chat_by_email(
        self, conn: AsyncConnection, conversation: Conversation, away_form: bool = False
    ) -> sa.Row | None:
        """A web chat goes on by email when its visitor left an address and is not on
        the site — or left it in the widget's away form, which promises an email."""
        if conversation.visitor_id is None or not conversation.contact_email:
            return None
        email_inbox_id = await conn.scalar(
            sa.select(inboxes.c.email_inbox_id).where(inboxes.c.id == conversation.inbox_id)
        )
        if email_inbox_id is None:
            return None
        if not away_form:
            online = await self._visitor_presence.get(
                conversation.inbox_id, conversation.visitor_id
            )
            if online is not None:
                return None
        subject = f"Your conversation with {conversation.inbox_name}"
        await conn.execute(
            email_threads.insert().values(
                conversation_id=conversation.id,
                email_inbox_id=email_inbox_id,
                token=new_token(),
                subject=subject,
                participants=[conversation.contact_email],
            )
        )
        return await self._thread_row(conn, conversation.id)

    async def away_form_left_address(
        self, conn: AsyncConnection, conversation: Conversation
    ) -> None:
        """Inside a chat message's transaction: the visitor used the away form, so
        the answers to this conversation go by email (if the website allows)."""
        if await self._thread_row(conn, conversation.id, missing_ok=True) is None:
            await self._continue_chat_by_email(conn, conversation, away_form=True)

    async def _enqueue(
        self,
        conn: AsyncConnection,
        inbox: EmailInbox,
        conversation_id: int,
        seq: int,
        outgoing: Outgoing,
        automatic: bool = False,
        attachments: Sequence[Attachment] = (),
    ) -> int:
        now = utcnow()
        email_id = await conn.scalar(
            email_messages.insert()
            .values(
                email_inbox_id=inbox.id,
                conversation_id=conversation_id,
                seq=seq,
                direction=Direction.OUT.value,
                message_id=outgoing.message_id,
                in_reply_to=outgoing.in_reply_to,
                references=list(outgoing.references),
                from_address=inbox.address,
                from_name=inbox.display_name or inbox.name,
                to_addresses=list(outgoing.to),
                cc_addresses=list(outgoing.cc),
                subject=outgoing.subject[:300],
                text=outgoing.text[:MAX_TEXT_CHARS],
                html=None,
                automatic=automatic,
                raw_size=len(outgoing.raw),
                created_at=now,
            )
            .returning(email_messages.c.id)
        )
        await conn.execute(email_raw.insert().values(email_message_id=email_id, data=outgoing.raw))
        await self._store_attachments(conn, email_id, attachments)
        await conn.execute(
            email_outbox.insert().values(
                email_message_id=email_id,
                email_inbox_id=inbox.id,
                # Bounces come back to the null-free envelope sender: the inbox itself.
                mail_from=inbox.address,
                recipients=[*outgoing.to, *outgoing.cc],
                state=OutboxState.QUEUED.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return email_id


async def _nothing() -> None:
    return None


def _base_address(address: str) -> str:
    local, _, domain = address.lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _synthetic_id(raw: bytes, domain: str) -> str:
    """A stable id for a message without Message-ID, so its copies are stored once."""
    return f"no-id.{hashlib.sha256(raw).hexdigest()[:32]}@{domain}"
