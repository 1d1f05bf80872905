"""Phone calls: every query of the `calls` table (hub/voice/calls.py writes,
hub/voice/call_reads.py reads)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.repositories.claims import claim
from storage.tables import calls, contacts, inboxes


def _call_query() -> sa.Select:
    """A call's row with its inbox's and contact's names."""
    return sa.select(
        calls,
        inboxes.c.name.label("inbox_name"),
        contacts.c.name.label("contact_name"),
    ).select_from(
        calls.join(inboxes, inboxes.c.id == calls.c.inbox_id).join(
            contacts, contacts.c.id == calls.c.contact_id
        )
    )


async def locked(conn: AsyncConnection, inbox_id: int, external_id: str) -> sa.Row | None:
    """The call the phone system knows by this id, locked until the transaction ends.
    The id is claimed first, so two first events of one call queue: the second
    finds the call the first stored instead of inserting it again."""
    await claim(conn, f"call {inbox_id} {external_id}")
    result = await conn.execute(
        sa.select(calls)
        .where(calls.c.inbox_id == inbox_id)
        .where(calls.c.external_id == external_id)
        .with_for_update()
    )
    return result.first()


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    call_id: int = await conn.scalar(calls.insert().values(values).returning(calls.c.id))
    return call_id


async def update(conn: AsyncConnection, call_id: int, values: dict[str, Any]) -> None:
    await conn.execute(calls.update().where(calls.c.id == call_id).values(values))


async def settle_call_backs(
    conn: AsyncConnection, contact_id: int, started_by: datetime | None, now: datetime
) -> None:
    """The contact's missed calls waiting for a call back (those started by
    `started_by`, when given) count as called back `now`."""
    query = (
        calls.update()
        .where(calls.c.contact_id == contact_id)
        .where(calls.c.call_back.is_(True))
        .where(calls.c.called_back_at.is_(None))
    )
    if started_by is not None:
        query = query.where(calls.c.started_at <= started_by)
    await conn.execute(query.values(called_back_at=now, updated_at=now))


async def stale(conn: AsyncConnection, ended: str, cutoff: datetime) -> list[sa.Row]:
    """Calls not in state `ended` without a change since `cutoff`
    (inbox_id, external_id, updated_at)."""
    result = await conn.execute(
        sa.select(calls.c.inbox_id, calls.c.external_id, calls.c.updated_at)
        .where(calls.c.state != ended)
        .where(calls.c.updated_at < cutoff)
    )
    return list(result)


async def row(conn: AsyncConnection, call_id: int) -> sa.Row | None:
    return (await conn.execute(_call_query().where(calls.c.id == call_id))).first()


async def page(
    conn: AsyncConnection,
    limit: int,
    *,
    direction: str | None = None,
    outcome: str | None = None,
    answered_by: str | None = None,
    since: datetime | None = None,
    waiting_for_call_back: bool = False,
    contact_id: int | None = None,
    inbox_ids: Collection[int] | None = None,
) -> list[sa.Row]:
    """Calls matching every filter given (`inbox_ids`: unless None), newest first."""
    query = _call_query().order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(limit)
    if direction is not None:
        query = query.where(calls.c.direction == direction)
    if outcome is not None:
        query = query.where(calls.c.outcome == outcome)
    if answered_by:
        query = query.where(calls.c.answered_by == answered_by)
    if since is not None:
        query = query.where(calls.c.started_at >= since)
    if waiting_for_call_back:
        query = query.where(calls.c.call_back.is_(True)).where(calls.c.called_back_at.is_(None))
    if contact_id is not None:
        query = query.where(calls.c.contact_id == contact_id)
    if inbox_ids is not None:
        query = query.where(calls.c.inbox_id.in_(sorted(inbox_ids)))
    return list(await conn.execute(query))


async def external_ids(conn: AsyncConnection, inbox_id: int) -> set[str]:
    rows = await conn.execute(sa.select(calls.c.external_id).where(calls.c.inbox_id == inbox_id))
    return {r[0] for r in rows}


async def count_waiting_for_call_back(
    conn: AsyncConnection, inbox_ids: Collection[int] | None = None
) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(calls)
        .where(calls.c.call_back.is_(True))
        .where(calls.c.called_back_at.is_(None))
    )
    if inbox_ids is not None:
        query = query.where(calls.c.inbox_id.in_(sorted(inbox_ids)))
    count = await conn.scalar(query)
    return count or 0


async def answerers(conn: AsyncConnection) -> list[str]:
    """Everyone who answered a call, by name."""
    rows = await conn.execute(
        sa.select(calls.c.answered_by)
        .where(calls.c.answered_by.is_not(None))
        .group_by(calls.c.answered_by)
        .order_by(calls.c.answered_by)
    )
    return [r[0] for r in rows]
