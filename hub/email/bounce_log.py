"""The admins' log of unmatched bounces: a delivery report or mailer-daemon notice
about mail the hub never sent (spoofed From, a forwarded report, another system's
mail) opens no ticket; it is kept here to be read (console: /console/bounces)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.email.models import InboundEmail
from hub.models import utcnow
from hub.records import record_of
from storage.db import Database
from storage.repositories import bounces as bounce_rows

SHOWN = 200  # the newest this many are shown


@dataclass(frozen=True)
class UnmatchedBounce:
    """One logged report, as the admins' page shows it."""

    id: int
    email_inbox_id: int
    message_id: str
    sender: str | None
    subject: str
    action: str  # failed, delayed or delivered
    recipient: str | None
    status: str | None
    diagnostic: str | None
    original_message_id: str | None  # the Message-ID it names, none of ours
    received_at: datetime


async def log_unmatched(
    conn: AsyncConnection, inbox_id: int, email: InboundEmail, message_id: str
) -> bool:
    """Inside the ingest transaction: log a bounce that matched no outgoing
    message; False when the same one was logged before."""
    assert email.bounce is not None
    bounce = email.bounce
    return await bounce_rows.add(
        conn,
        {
            "email_inbox_id": inbox_id,
            "message_id": message_id[:255],
            "sender": email.sender.email[:254] if email.sender else None,
            "subject": email.subject[:500],
            "action": bounce.action,
            "recipient": (bounce.recipient or "")[:254] or None,
            "status": (bounce.status or "")[:16] or None,
            "diagnostic": (bounce.diagnostic or "")[:500] or None,
            "original_message_id": (bounce.original_message_id or "")[:255] or None,
            "received_at": utcnow(),
        },
    )


class BounceLog:
    """Reads the log (admins only: the console checks the role)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def latest(self, limit: int = SHOWN) -> list[UnmatchedBounce]:
        """The newest logged bounces, newest first."""
        async with self._db.read() as conn:
            rows = await bounce_rows.latest(conn, limit)
        return [record_of(UnmatchedBounce, row) for row in rows]
