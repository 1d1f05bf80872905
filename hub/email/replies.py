"""Replies leaving by email: an agent's reply on a ticket (or on a web chat that
goes on by email) composed, stored and queued for the outbox sender
(hub/email/outbox.py) inside the reply's unit of work. `EmailTicketService`
(tickets.py) adds receiving; the acknowledgement of a new ticket is queued here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import ConversationLog
from hub.email.compose import Outgoing, compose
from hub.email.inboxes import EmailInbox, EmailInboxService
from hub.email.models import Attachment, OutboxState
from hub.email.threading import new_token
from hub.email.ticket_reads import EmailTicketReads
from hub.errors import InvalidInput
from hub.events import topics
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import Conversation, Direction, Message, utcnow
from hub.visitors.presence import PresenceBackend
from storage.repositories import access as access_rows
from storage.repositories import email as mail_rows
from storage.repositories import inboxes as inbox_rows
from storage.repositories import outbox as outbox_rows

MAX_TEXT_CHARS = 100_000
# Addresses no person reads: never acknowledged, never kept on a ticket.
NO_REPLY = re.compile(r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?)([+.-]|$)")


def clean_body(text: str) -> str:
    """A mail's text as stored: no control characters, Unix line ends, capped."""
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text.replace("\r\n", "\n")).strip()
    return text[:MAX_TEXT_CHARS]


def base_address(address: str) -> str:
    """The address without its `+tag` (support+abc@x → support@x), lower case."""
    local, _, domain = address.lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def attachment_rows(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """Attachments as `mail_rows.insert_mail` stores them."""
    return [
        {
            "filename": a.filename[:200],
            "content_type": a.content_type[:100],
            "size": len(a.data),
            "content_id": a.content_id[:250] if a.content_id else None,
            "inline": a.inline,
            "data": a.data,
        }
        for a in attachments
    ]


async def _nothing() -> None:
    return None


class EmailReplies(EmailTicketReads):
    def __init__(
        self,
        writes: Writes,
        log: ConversationLog,
        inboxes_: EmailInboxService,
        visitor_presence: PresenceBackend,
    ) -> None:
        super().__init__(writes.db, inboxes_)
        self._writes = writes
        self._bus = writes.publisher.bus
        self._log = log
        self._visitor_presence = visitor_presence
        # Called after a commit that queued mail (the outbox sender wakes up).
        self.on_queued: Callable[[], Awaitable[None]] = _nothing

    async def _wake_outbox(self) -> None:
        await self.on_queued()

    async def publish_state(self, conversation_id: int, seq: int) -> None:
        """Tell consoles an outgoing message's delivery state (queued, sent, failed)."""
        details = (await self.details(conversation_id)).get(seq)
        if details is None:
            return
        async with self._db.read() as conn:
            inbox_ids = await access_rows.inboxes_of(conn, "conversation", conversation_id)
        frame = {"type": "email", "conversation_id": conversation_id, "email": details.to_wire()}
        for inbox_id in inbox_ids:
            await self._bus.publish(topics.inbox_channel(inbox_id), frame)

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
        last_in = await mail_rows.latest_of(conn, conversation.id, Direction.IN.value)
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
            latest = await mail_rows.latest_of(conn, conversation.id)
            previous = latest.message_id if latest is not None else None
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
        await self.enqueue(
            conn, inbox, conversation.id, message.seq, outgoing, attachments=attachments
        )
        work.after_commit(functools.partial(self.publish_state, conversation.id, message.seq))
        work.after_commit(self._wake_outbox)
        return True

    async def _continue_chat_by_email(
        self,
        conn: AsyncConnection,
        conversation: Conversation,
        away_form: bool = False,
        address: str | None = None,
    ) -> sa.Row | None:
        """A web chat goes on by email (to its contact's verified address, or
        `address`) when its visitor is not on the site — or used the widget's away
        form, which promises an email."""
        address = address or conversation.contact_email
        if conversation.visitor_id is None or not address:
            return None
        website = await inbox_rows.row(conn, conversation.inbox_id)
        email_inbox_id = website.email_inbox_id if website is not None else None
        if email_inbox_id is None:
            return None
        if not away_form:
            online = await self._visitor_presence.get(
                conversation.inbox_id, conversation.visitor_id
            )
            if online is not None:
                return None
        subject = f"Your conversation with {conversation.inbox_name}"
        await mail_rows.insert_thread(
            conn,
            {
                "conversation_id": conversation.id,
                "email_inbox_id": email_inbox_id,
                "token": new_token(),
                "subject": subject,
                "participants": [address],
            },
        )
        return await self._thread_row(conn, conversation.id)

    async def away_form_left_address(
        self, conn: AsyncConnection, conversation: Conversation, typed: str | None
    ) -> None:
        """Inside a chat message's transaction: the visitor used the away form, so
        the answers to this conversation go by email (if the website allows) — to
        the contact's verified address, or to the `typed` one if it is a real mailbox
        that has written to us. Any other typed address is only a claim: email waits
        until an agent confirms it (anyone can type anyone's address)."""
        if await self._thread_row(conn, conversation.id, missing_ok=True) is not None:
            return
        if typed is None or typed == conversation.contact_email:
            await self._continue_chat_by_email(conn, conversation, away_form=True)
        elif await mail_rows.has_written_in(conn, typed):
            await self._continue_chat_by_email(conn, conversation, away_form=True, address=typed)

    async def enqueue(
        self,
        conn: AsyncConnection,
        inbox: EmailInbox,
        conversation_id: int,
        seq: int,
        outgoing: Outgoing,
        automatic: bool = False,
        attachments: Sequence[Attachment] = (),
    ) -> int:
        """Store an outgoing mail for the conversation's message `seq` and queue it."""
        now = utcnow()
        email_id = await mail_rows.insert_mail(
            conn,
            {
                "email_inbox_id": inbox.id,
                "conversation_id": conversation_id,
                "seq": seq,
                "direction": Direction.OUT.value,
                "message_id": outgoing.message_id,
                "in_reply_to": outgoing.in_reply_to,
                "references": list(outgoing.references),
                "from_address": inbox.address,
                "from_name": inbox.display_name or inbox.name,
                "to_addresses": list(outgoing.to),
                "cc_addresses": list(outgoing.cc),
                "subject": outgoing.subject[:300],
                "text": outgoing.text[:MAX_TEXT_CHARS],
                "html": None,
                "automatic": automatic,
                "raw_size": len(outgoing.raw),
                "created_at": now,
            },
            outgoing.raw,
            attachment_rows(attachments),
        )
        await outbox_rows.insert(
            conn,
            {
                "email_message_id": email_id,
                "email_inbox_id": inbox.id,
                # Bounces come back to the null-free envelope sender: the inbox itself.
                "mail_from": inbox.address,
                "recipients": [*outgoing.to, *outgoing.cc],
                "state": OutboxState.QUEUED.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        return email_id
