"""The log of unmatched bounces (`email_unmatched_bounces`): reports about mail the
hub never sent, kept for admins (hub/email/bounce_log.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import email_unmatched_bounces


async def add(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Log one; False when this inbox logged the same Message-ID before."""
    known = await conn.scalar(
        sa.select(email_unmatched_bounces.c.id)
        .where(email_unmatched_bounces.c.email_inbox_id == values["email_inbox_id"])
        .where(email_unmatched_bounces.c.message_id == values["message_id"])
    )
    if known is not None:
        return False
    await conn.execute(email_unmatched_bounces.insert().values(values))
    return True


async def latest(conn: AsyncConnection, limit: int) -> list[sa.Row]:
    """The newest `limit` logged bounces, newest first."""
    result = await conn.execute(
        sa.select(email_unmatched_bounces)
        .order_by(email_unmatched_bounces.c.received_at.desc(), email_unmatched_bounces.c.id.desc())
        .limit(limit)
    )
    return list(result)
