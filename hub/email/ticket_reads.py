"""Reading email tickets for the console: the ticket's email side, each
message's email details, bodies, the raw message, attachments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, overload

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.email.inboxes import EmailInboxService
from hub.email.models import Attachment, OutboxState
from hub.errors import NotFound
from hub.models import (
    Direction,
    iso,
)
from hub.records import record_of
from storage.db import Database
from storage.repositories import email as mail_rows


@dataclass(frozen=True)
class EmailDetails:
    """What the console shows beside an email message (by conversation seq)."""

    id: int
    seq: int
    direction: Direction
    message_id: str
    subject: str
    from_address: str | None
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    has_html: bool
    automatic: bool
    parse_error: str | None
    raw_size: int
    attachments: tuple[dict[str, Any], ...]
    state: OutboxState | None = None  # outgoing only
    error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None  # queued only: when the outbox tries again
    delivery: str | None = None  # sent only: a delivery report's "delayed" or "delivered"
    delivery_note: str | None = None  # why it is delayed (status, the server's words)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "direction": self.direction.value,
            "subject": self.subject,
            "from": {"address": self.from_address, "name": self.from_name},
            "to": list(self.to),
            "cc": list(self.cc),
            "has_html": self.has_html,
            "automatic": self.automatic,
            "parse_error": self.parse_error,
            "attachments": list(self.attachments),
            "state": self.state.value if self.state else None,
            "error": self.error,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at) if self.next_attempt_at else None,
            "delivery": self.delivery,
            "delivery_note": self.delivery_note,
        }


class EmailTicketReads:
    def __init__(self, db: Database, inboxes: EmailInboxService) -> None:
        self._db = db
        self._inboxes = inboxes

    @overload
    async def _thread_row(
        self, conn: AsyncConnection, conversation_id: int, missing_ok: Literal[False] = False
    ) -> sa.Row: ...

    @overload
    async def _thread_row(
        self, conn: AsyncConnection, conversation_id: int, missing_ok: bool
    ) -> sa.Row | None: ...

    async def _thread_row(
        self, conn: AsyncConnection, conversation_id: int, missing_ok: bool = False
    ) -> sa.Row | None:
        row = await mail_rows.thread(conn, conversation_id)
        if row is None and not missing_ok:
            raise NotFound(f"conversation {conversation_id} is not an email thread")
        return row

    async def thread(self, conversation_id: int) -> dict[str, Any] | None:
        """The ticket's email side: subject, reply address, participants."""
        async with self._db.read() as conn:
            row = await self._thread_row(conn, conversation_id, missing_ok=True)
        if row is None:
            return None
        inbox = await self._inboxes.get(row.email_inbox_id)
        return {
            "subject": row.subject,
            "token": row.token,
            "reply_address": inbox.reply_address(row.token),
            "inbox_address": inbox.address,
            "participants": list(row.participants or []),
        }

    async def details(self, conversation_id: int) -> dict[int, EmailDetails]:
        """Email details of a conversation's messages, by seq."""
        async with self._db.read() as conn:
            rows = await mail_rows.of_conversation(conn, conversation_id)
            files = await mail_rows.files_of(conn, [row.id for row in rows])
        by_email: dict[int, list[dict[str, Any]]] = {}
        for f in files:
            by_email.setdefault(f.email_message_id, []).append(
                {
                    "id": f.id,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": f.size,
                    "inline": f.inline,
                }
            )
        return {
            row.seq: record_of(
                EmailDetails,
                row,
                to=tuple(row.to_addresses or ()),
                cc=tuple(row.cc_addresses or ()),
                has_html=bool(row.html),
                attachments=tuple(by_email.get(row.id, ())),
                state=OutboxState(row.state) if row.state else None,
                error=row.last_error,
                attempts=row.attempts or 0,
            )
            for row in rows
        }

    async def body(self, email_id: int) -> tuple[int, str, str | None]:
        """(conversation id, full text, sanitized HTML) of one stored email."""
        async with self._db.read() as conn:
            row = await mail_rows.body(conn, email_id)
        if row is None:
            raise NotFound(f"no email {email_id}")
        return row.conversation_id, row.text, row.html

    async def raw(self, email_id: int) -> tuple[int, bytes]:
        """(conversation id, the message exactly as received or sent)."""
        async with self._db.read() as conn:
            row = await mail_rows.raw(conn, email_id)
        if row is None:
            raise NotFound(f"no email {email_id}")
        return row.conversation_id, row.data

    async def attachment(self, attachment_id: int) -> tuple[int, Attachment]:
        """(conversation id, the file) for a download."""
        async with self._db.read() as conn:
            row = await mail_rows.attachment(conn, attachment_id)
        if row is None:
            raise NotFound(f"no attachment {attachment_id}")
        return row.conversation_id, Attachment(
            filename=row.filename,
            content_type=row.content_type,
            data=row.data,
            content_id=row.content_id,
            inline=row.inline,
        )

    async def inline_images(self, email_id: int) -> dict[str, int]:
        """`cid:` → attachment id, to show inline images of an HTML body."""
        async with self._db.read() as conn:
            return await mail_rows.inline_images(conn, email_id)
