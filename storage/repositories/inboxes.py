"""Inboxes and each channel's settings: `inboxes`, `email_inboxes`, `voice_lines`
and `business_hours` (hub/inboxes, hub/email/inboxes.py, hub/voice/phone_lines.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import business_hours, email_inboxes, inboxes, voice_lines

_BY_SITE_TOKENS = sa.select(inboxes).where(
    inboxes.c.site_token.in_(sa.bindparam("b_tokens", expanding=True))
)


# ---- inboxes -------------------------------------------------------------------------


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    inbox_id: int = await conn.scalar(inboxes.insert().values(values).returning(inboxes.c.id))
    return inbox_id


async def row(conn: AsyncConnection, inbox_id: int) -> sa.Row | None:
    return (await conn.execute(sa.select(inboxes).where(inboxes.c.id == inbox_id))).first()


async def all_rows(conn: AsyncConnection) -> list[sa.Row]:
    return list(await conn.execute(sa.select(inboxes).order_by(inboxes.c.id)))


async def by_site_tokens(conn: AsyncConnection, tokens: Sequence[str]) -> list[sa.Row]:
    return list(await conn.execute(_BY_SITE_TOKENS, {"b_tokens": sorted(set(tokens))}))


async def channel_of(conn: AsyncConnection, inbox_id: int) -> str | None:
    channel: str | None = await conn.scalar(
        sa.select(inboxes.c.channel).where(inboxes.c.id == inbox_id)
    )
    return channel


async def update(
    conn: AsyncConnection, inbox_id: int, values: dict[str, Any], channel: str | None = None
) -> bool:
    """Set `values` on the inbox (only if it is of `channel`, when given); False if none was."""
    query = inboxes.update().where(inboxes.c.id == inbox_id)
    if channel is not None:
        query = query.where(inboxes.c.channel == channel)
    done = await conn.execute(query.values(values))
    return bool(done.rowcount)


async def archive(conn: AsyncConnection, inbox_id: int, at: Any) -> None:
    """Mark the inbox archived at `at`, unless it already is."""
    await conn.execute(
        inboxes.update()
        .where(inboxes.c.id == inbox_id, inboxes.c.archived_at.is_(None))
        .values(archived_at=at)
    )


# ---- phone lines ---------------------------------------------------------------------


async def insert_voice_line(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(voice_lines.insert().values(values))


async def update_voice_line(conn: AsyncConnection, inbox_id: int, values: dict[str, Any]) -> bool:
    done = await conn.execute(
        voice_lines.update().where(voice_lines.c.inbox_id == inbox_id).values(values)
    )
    return bool(done.rowcount)


async def voice_lines_where(
    conn: AsyncConnection, *, inbox_id: int | None = None, cti_token_hash: str | None = None
) -> list[sa.Row]:
    """Phone lines (their inbox's and their own columns), all or those matching."""
    query = (
        sa.select(inboxes, voice_lines)
        .join(voice_lines, voice_lines.c.inbox_id == inboxes.c.id)
        .order_by(inboxes.c.id)
    )
    if inbox_id is not None:
        query = query.where(voice_lines.c.inbox_id == inbox_id)
    if cti_token_hash is not None:
        query = query.where(voice_lines.c.cti_token_hash == cti_token_hash)
    return list(await conn.execute(query))


# ---- email inboxes -------------------------------------------------------------------


async def insert_email_inbox(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(email_inboxes.insert().values(values))


async def email_inbox_row(conn: AsyncConnection, inbox_id: int) -> sa.Row | None:
    result = await conn.execute(
        sa.select(email_inboxes).where(email_inboxes.c.inbox_id == inbox_id)
    )
    return result.first()


async def address_taken(conn: AsyncConnection, address: str, other_than: int | None = None) -> bool:
    """Whether an email inbox (other than `other_than`) has this address."""
    query = sa.select(email_inboxes.c.inbox_id).where(email_inboxes.c.address == address)
    if other_than is not None:
        query = query.where(email_inboxes.c.inbox_id != other_than)
    return await conn.scalar(query) is not None


async def update_email_inbox(conn: AsyncConnection, inbox_id: int, values: dict[str, Any]) -> bool:
    done = await conn.execute(
        email_inboxes.update().where(email_inboxes.c.inbox_id == inbox_id).values(values)
    )
    return bool(done.rowcount)


async def email_inboxes_where(
    conn: AsyncConnection,
    *,
    inbox_id: int | None = None,
    address: str | None = None,
    intake_token_hash: str | None = None,
    imap_enabled: bool = False,
) -> list[sa.Row]:
    """Email inboxes (their inbox's and their own columns), all or those matching."""
    query = (
        sa.select(inboxes, email_inboxes)
        .join(email_inboxes, email_inboxes.c.inbox_id == inboxes.c.id)
        .order_by(inboxes.c.id)
    )
    if inbox_id is not None:
        query = query.where(email_inboxes.c.inbox_id == inbox_id)
    if address is not None:
        query = query.where(email_inboxes.c.address == address)
    if intake_token_hash is not None:
        query = query.where(email_inboxes.c.intake_token_hash == intake_token_hash)
    if imap_enabled:
        query = query.where(email_inboxes.c.imap_enabled.is_(True))
    return list(await conn.execute(query))


# ---- business hours ------------------------------------------------------------------


async def business_hours_row(conn: AsyncConnection, inbox_id: int) -> sa.Row | None:
    result = await conn.execute(
        sa.select(business_hours).where(business_hours.c.inbox_id == inbox_id)
    )
    return result.first()


async def set_business_hours(
    conn: AsyncConnection, inbox_id: int, timezone: str, schedule: dict[str, Any]
) -> None:
    """Insert or replace the inbox's schedule."""
    insert_ = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    statement = insert_(business_hours).values(
        inbox_id=inbox_id, timezone=timezone, schedule=schedule
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[business_hours.c.inbox_id],
            set_={"timezone": timezone, "schedule": schedule},
        )
    )
