"""Visitors of a website and their page trail: the queries behind
hub/visitors/service.py (who a visitor is) and hub/visitors/tracking.py
(visits, page views, last-seen times).

Batched writes take their rows in the order the caller gives; callers sort
them by visitor so that writers on several nodes lock rows in one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import contacts, conversations, page_views, visitors

_BY_IDS = sa.select(visitors).where(visitors.c.id.in_(sa.bindparam("b_ids", expanding=True)))

_STAMP_SEEN = (
    visitors.update()
    .where(visitors.c.id == sa.bindparam("visitor"))
    .values(last_seen_at=sa.bindparam("seen"))
)

# A stamp from presence never moves the time back (a visitor back before the sweep came by).
_STAMP_SEEN_FORWARD = _STAMP_SEEN.where(visitors.c.last_seen_at < sa.bindparam("seen"))

_STORE_VISIT = (
    visitors.update()
    .where(visitors.c.id == sa.bindparam("visitor"))
    .values(
        visit_count=sa.bindparam("count"),
        visit_started_at=sa.bindparam("started"),
        last_seen_at=sa.bindparam("seen"),
    )
)

_STORE_LAST_PAGE = (
    visitors.update()
    .where(visitors.c.id == sa.bindparam("visitor"))
    .values(
        last_page_url=sa.bindparam("url"),
        last_page_title=sa.bindparam("title"),
        last_seen_at=sa.bindparam("seen"),
    )
)

_STORE_PAGE_SECONDS = (
    page_views.update()
    .where(page_views.c.id == sa.bindparam("page"))
    .where(page_views.c.seconds.is_(None))
    .values(seconds=sa.bindparam("secs"))
)


# ---- visitors ------------------------------------------------------------------------


async def row(conn: AsyncConnection, visitor_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(visitors).where(visitors.c.id == visitor_id))).first()


async def rows_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, sa.Row]:
    return {r.id: r for r in await conn.execute(_BY_IDS, {"b_ids": sorted(set(ids))})}


async def known(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    """Which of these visitor ids are stored."""
    return set(await conn.scalars(sa.select(visitors.c.id).where(visitors.c.id.in_(ids))))


async def inbox_of(conn: AsyncConnection, visitor_id: str) -> int | None:
    inbox_id: int | None = await conn.scalar(
        sa.select(visitors.c.inbox_id).where(visitors.c.id == visitor_id)
    )
    return inbox_id


async def insert_many(conn: AsyncConnection, values: list[dict[str, Any]]) -> list[sa.Row]:
    """New visitors' rows, as stored, in the order given."""
    result = await conn.execute(
        visitors.insert().returning(*visitors.c, sort_by_parameter_order=True), values
    )
    return list(result)


async def update(conn: AsyncConnection, visitor_id: str, values: dict[str, Any]) -> None:
    await conn.execute(visitors.update().where(visitors.c.id == visitor_id).values(values))


async def stamp_seen(
    conn: AsyncConnection, stamps: list[tuple[str, datetime]], forward_only: bool = False
) -> None:
    """Each (visitor, time) as the visitor's last-seen time; `forward_only`: never earlier
    than the one stored."""
    statement = _STAMP_SEEN_FORWARD if forward_only else _STAMP_SEEN
    await conn.execute(statement, [{"visitor": v, "seen": at} for v, at in stamps])


async def store_visits(
    conn: AsyncConnection, visits: list[tuple[str, int, datetime, datetime]]
) -> None:
    """Each (visitor, visit number, visit started, last seen)."""
    await conn.execute(
        _STORE_VISIT,
        [{"visitor": v, "count": n, "started": s, "seen": at} for v, n, s, at in visits],
    )


async def who(conn: AsyncConnection, visitor_ids: Sequence[str]) -> list[sa.Row]:
    """Each visitor's contact: visitor_id, id, name, email, claimed."""
    result = await conn.execute(
        sa.select(
            visitors.c.id.label("visitor_id"),
            contacts.c.id,
            contacts.c.name,
            contacts.c.email,
            contacts.c.claimed,
        )
        .select_from(visitors.join(contacts, contacts.c.id == visitors.c.contact_id))
        .where(visitors.c.id.in_(visitor_ids))
    )
    return list(result)


async def latest_conversations(
    conn: AsyncConnection, visitor_ids: Sequence[str]
) -> dict[str, sa.Row]:
    """Each visitor's latest conversation (visitor_id, id, status), by visitor."""
    latest = (
        sa.select(sa.func.max(conversations.c.id))
        .where(conversations.c.visitor_id.in_(visitor_ids))
        .group_by(conversations.c.visitor_id)
    )
    result = await conn.execute(
        sa.select(conversations.c.visitor_id, conversations.c.id, conversations.c.status).where(
            conversations.c.id.in_(latest.scalar_subquery())
        )
    )
    return {chat.visitor_id: chat for chat in result}


# ---- page views ----------------------------------------------------------------------


async def insert_page_views(conn: AsyncConnection, views: list[dict[str, Any]]) -> list[int]:
    """The new page views' ids, in the order given."""
    ids = await conn.scalars(
        page_views.insert().returning(page_views.c.id, sort_by_parameter_order=True), views
    )
    return list(ids)


async def store_last_pages(
    conn: AsyncConnection, pages: list[tuple[str, str, str | None, datetime]]
) -> None:
    """Each (visitor, url, title, seen at) as the visitor's last page and last-seen time."""
    await conn.execute(
        _STORE_LAST_PAGE,
        [{"visitor": v, "url": url, "title": title, "seen": at} for v, url, title, at in pages],
    )


async def store_page_seconds(conn: AsyncConnection, pages: list[tuple[int, int]]) -> None:
    """Each (page view, seconds on it), unless one is stored already."""
    await conn.execute(_STORE_PAGE_SECONDS, [{"page": p, "secs": s} for p, s in pages])


async def pages_of_visits(conn: AsyncConnection, visits: Sequence[tuple[str, int]]) -> list[sa.Row]:
    """The page views of these (visitor, visit number) pairs, oldest first."""
    result = await conn.execute(
        sa.select(page_views)
        .where(sa.tuple_(page_views.c.visitor_id, page_views.c.visit).in_(visits))
        .order_by(page_views.c.id)
    )
    return list(result)


async def trail(conn: AsyncConnection, visitor_id: str, after_visit: int) -> list[sa.Row]:
    """The visitor's page views of the visits numbered above `after_visit`, oldest first."""
    result = await conn.execute(
        sa.select(page_views)
        .where(page_views.c.visitor_id == visitor_id)
        .where(page_views.c.visit > after_visit)
        .order_by(page_views.c.id)
    )
    return list(result)


async def latest_pages(conn: AsyncConnection, visitor_id: str, limit: int) -> list[sa.Row]:
    """The visitor's latest `limit` page views, newest first."""
    result = await conn.execute(
        sa.select(page_views)
        .where(page_views.c.visitor_id == visitor_id)
        .order_by(page_views.c.id.desc())
        .limit(limit)
    )
    return list(result)


async def delete_page_views_before(conn: AsyncConnection, cutoff: datetime) -> int:
    result = await conn.execute(page_views.delete().where(page_views.c.created_at < cutoff))
    return result.rowcount or 0
