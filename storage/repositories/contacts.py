"""Contacts and their phone numbers: every write to `contacts` and `contact_phones`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.repositories.claims import claim
from storage.tables import contact_phones, contacts, conversations, page_views, visitors


async def row(conn: AsyncConnection, contact_id: int) -> sa.Row | None:
    return (await conn.execute(sa.select(contacts).where(contacts.c.id == contact_id))).first()


async def exists(conn: AsyncConnection, contact_id: int) -> bool:
    found = await conn.scalar(sa.select(contacts.c.id).where(contacts.c.id == contact_id))
    return found is not None


async def by_email(conn: AsyncConnection, email: str) -> int | None:
    """The oldest contact with this address."""
    return await conn.scalar(
        sa.select(contacts.c.id).where(contacts.c.email == email).order_by(contacts.c.id).limit(1)
    )


async def by_phone(conn: AsyncConnection, e164: str) -> int | None:
    """The number's contact."""
    return await conn.scalar(
        sa.select(contact_phones.c.contact_id).where(contact_phones.c.e164 == e164)
    )


async def claim_phone(conn: AsyncConnection, e164: str) -> int | None:
    """The number's contact, the number claimed until the transaction ends: two
    first calls from one new number queue, the second finds the contact the
    first made."""
    await claim(conn, f"phone {e164}")
    return await by_phone(conn, e164)


async def by_external_id(conn: AsyncConnection, external_id: str) -> int | None:
    return await conn.scalar(sa.select(contacts.c.id).where(contacts.c.external_id == external_id))


async def of_visitor(conn: AsyncConnection, visitor_id: str) -> sa.Row | None:
    """The visitor's contact and inbox."""
    return (
        await conn.execute(
            sa.select(visitors.c.contact_id, visitors.c.inbox_id).where(visitors.c.id == visitor_id)
        )
    ).first()


async def create(conn: AsyncConnection, at: datetime, **values: Any) -> int:
    contact_id: int = await conn.scalar(
        contacts.insert().values(attributes={}, created_at=at, **values).returning(contacts.c.id)
    )
    return contact_id


async def create_many(conn: AsyncConnection, ats: Sequence[datetime]) -> list[int]:
    """Empty contacts (new visitors), one per time, ids in the same order."""
    result = await conn.execute(
        contacts.insert().returning(contacts.c.id, sort_by_parameter_order=True),
        [{"attributes": {}, "created_at": at} for at in ats],
    )
    return list(result.scalars())


async def update(conn: AsyncConnection, contact_id: int, values: dict[str, Any]) -> bool:
    """Set `values` on the contact; False when there is no such contact."""
    done = await conn.execute(contacts.update().where(contacts.c.id == contact_id).values(values))
    return done.rowcount != 0


async def label_unverified(conn: AsyncConnection, contact_id: int, typed: dict[str, Any]) -> bool:
    """Label the contact with what a visitor typed (the away form) unless a verified
    identity owns it (then nothing changes); False when nothing was set. The name
    labels it; name and email are kept as claimed, never as the contact's email."""
    own = await row(conn, contact_id)
    if own is None or own.external_id is not None:
        return False
    claimed = dict(own.claimed or {})
    values: dict[str, Any] = {}
    if typed.get("name"):
        values["name"] = claimed["name"] = typed["name"]
    if typed.get("email") and typed["email"] != own.email:
        claimed["email"] = typed["email"]
    values["claimed"] = claimed or None
    # The guard again: a verified identify may have taken the contact meanwhile.
    done = await conn.execute(
        contacts.update()
        .where(contacts.c.id == contact_id, contacts.c.external_id.is_(None))
        .values(values)
    )
    return done.rowcount != 0


async def attributes(conn: AsyncConnection, contact_id: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await conn.scalar(
        sa.select(contacts.c.attributes).where(contacts.c.id == contact_id)
    )
    return found


async def phones(conn: AsyncConnection, contact_id: int) -> list[str]:
    rows = await conn.execute(
        sa.select(contact_phones.c.e164)
        .where(contact_phones.c.contact_id == contact_id)
        .order_by(contact_phones.c.e164)
    )
    return [found[0] for found in rows]


async def add_phone(conn: AsyncConnection, contact_id: int, e164: str) -> None:
    """The number is the contact's; it becomes their shown number if they had none."""
    await conn.execute(contact_phones.insert().values(e164=e164, contact_id=contact_id))
    await conn.execute(
        contacts.update()
        .where(contacts.c.id == contact_id)
        .where(contacts.c.phone.is_(None))
        .values(phone=e164)
    )


async def move_visitor(conn: AsyncConnection, visitor_id: str, contact_id: int) -> None:
    """The visitor, their conversations and their page trail now belong to `contact_id`."""
    for table in (visitors, conversations, page_views):
        key = table.c.id if table is visitors else table.c.visitor_id
        await conn.execute(table.update().where(key == visitor_id).values(contact_id=contact_id))
