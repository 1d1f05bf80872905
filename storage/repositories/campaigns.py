"""Proactive campaigns and to whom each was shown: the queries behind
hub/visitors/campaigns.py and the campaign replies of hub/conversations/chat_threading.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import campaign_deliveries, campaigns, inboxes


def _query() -> sa.Select:
    """A campaign's row with its inbox's name and how often it was shown and replied to."""
    shown = (
        sa.select(sa.func.count())
        .where(campaign_deliveries.c.campaign_id == campaigns.c.id)
        .scalar_subquery()
        .label("shown")
    )
    replied = (
        sa.select(sa.func.count())
        .where(campaign_deliveries.c.campaign_id == campaigns.c.id)
        .where(campaign_deliveries.c.replied_at.is_not(None))
        .scalar_subquery()
        .label("replied")
    )
    return sa.select(campaigns, inboxes.c.name.label("inbox_name"), shown, replied).select_from(
        campaigns.join(inboxes, inboxes.c.id == campaigns.c.inbox_id)
    )


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """The new campaign's id; None when its inbox does not exist."""
    inbox = await conn.scalar(sa.select(inboxes.c.id).where(inboxes.c.id == values["inbox_id"]))
    if inbox is None:
        return None
    campaign_id: int = await conn.scalar(
        campaigns.insert().values(values).returning(campaigns.c.id)
    )
    return campaign_id


async def update(conn: AsyncConnection, campaign_id: int, values: dict[str, Any]) -> bool:
    """False when there is no such campaign."""
    result = await conn.execute(
        campaigns.update().where(campaigns.c.id == campaign_id).values(values)
    )
    return bool(result.rowcount)


async def row(conn: AsyncConnection, campaign_id: int) -> sa.Row | None:
    return (await conn.execute(_query().where(campaigns.c.id == campaign_id))).first()


async def all_rows(conn: AsyncConnection) -> list[sa.Row]:
    return list(await conn.execute(_query().order_by(campaigns.c.id)))


async def enabled_in(conn: AsyncConnection, inbox_id: int) -> list[sa.Row]:
    result = await conn.execute(
        _query().where(campaigns.c.inbox_id == inbox_id).where(campaigns.c.enabled.is_(True))
    )
    return list(result)


async def record_shown(
    conn: AsyncConnection, campaign_id: int, visitor_id: str, at: datetime
) -> bool:
    """Record that the visitor was shown the campaign; False if they were before
    (a campaign is shown once per visitor)."""
    insert_ = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    result = await conn.execute(
        insert_(campaign_deliveries)
        .values(campaign_id=campaign_id, visitor_id=visitor_id, shown_at=at)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)


async def unanswered(
    conn: AsyncConnection, campaign_id: int, inbox_id: int, visitor_id: str
) -> sa.Row | None:
    """The campaign (id, message, sender_name) if it was shown to this visitor of
    this inbox and is not answered yet."""
    result = await conn.execute(
        sa.select(campaigns.c.id, campaigns.c.message, campaigns.c.sender_name)
        .select_from(
            campaigns.join(campaign_deliveries, campaign_deliveries.c.campaign_id == campaigns.c.id)
        )
        .where(campaigns.c.id == campaign_id)
        .where(campaigns.c.inbox_id == inbox_id)
        .where(campaign_deliveries.c.visitor_id == visitor_id)
        .where(campaign_deliveries.c.replied_at.is_(None))
    )
    return result.first()


async def record_reply(
    conn: AsyncConnection, campaign_id: int, visitor_id: str, conversation_id: int, at: datetime
) -> None:
    await conn.execute(
        campaign_deliveries.update()
        .where(campaign_deliveries.c.campaign_id == campaign_id)
        .where(campaign_deliveries.c.visitor_id == visitor_id)
        .values(conversation_id=conversation_id, replied_at=at)
    )
