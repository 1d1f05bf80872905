"""The email outbox (`email_outbox`): mail waiting to be sent, claimed by one
sender at a time (hub/email/outbox.py, hub/email/replies.py).

`state` arguments are the hub's outbox state values ("queued", "sent", "failed").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import email_messages, email_outbox, email_raw


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(email_outbox.insert().values(values))


async def set_state_of_mail(
    conn: AsyncConnection, email_id: int, values: dict[str, Any], only_if: str | None = None
) -> bool:
    """Set `values` on the outbox row of a mail (only when in state `only_if`, if given);
    False when none was changed."""
    query = email_outbox.update().where(email_outbox.c.email_message_id == email_id)
    if only_if is not None:
        query = query.where(email_outbox.c.state == only_if)
    done = await conn.execute(query.values(values))
    return done.rowcount == 1


async def claim(
    conn: AsyncConnection,
    queued: str,
    now: datetime,
    owner: str,
    until: datetime,
    limit: int,
    skip_locked: bool,
) -> list[sa.Row]:
    """Claim up to `limit` queued rows due by `now` that nobody holds, until `until`;
    the claimed rows with their mail's conversation_id, seq and bytes (data)."""
    claimable = sa.and_(
        email_outbox.c.state == queued,
        email_outbox.c.next_attempt_at <= now,
        sa.or_(email_outbox.c.claimed_until.is_(None), email_outbox.c.claimed_until < now),
    )
    candidates = (
        sa.select(email_outbox.c.id)
        .where(claimable)
        .order_by(email_outbox.c.next_attempt_at, email_outbox.c.id)
        .limit(limit)
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    ids: Sequence[int] = (await conn.scalars(candidates)).all()
    if not ids:
        return []
    await conn.execute(
        email_outbox.update()
        .where(email_outbox.c.id.in_(ids))
        .where(claimable)
        .values(claimed_by=owner, claimed_until=until)
    )
    result = await conn.execute(
        sa.select(
            email_outbox, email_messages.c.conversation_id, email_messages.c.seq, email_raw.c.data
        )
        .select_from(
            email_outbox.join(
                email_messages, email_messages.c.id == email_outbox.c.email_message_id
            ).join(email_raw, email_raw.c.email_message_id == email_messages.c.id)
        )
        .where(email_outbox.c.id.in_(ids))
        .where(email_outbox.c.claimed_by == owner)
        .order_by(email_outbox.c.id)
    )
    return list(result)


async def record(conn: AsyncConnection, outbox_id: int, owner: str, values: dict[str, Any]) -> None:
    """Set `values` on a row `owner` holds (a lease that ran out belongs to someone else)."""
    await conn.execute(
        email_outbox.update()
        .where(email_outbox.c.id == outbox_id)
        .where(email_outbox.c.claimed_by == owner)
        .values(values)
    )
