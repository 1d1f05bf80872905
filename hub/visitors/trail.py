"""A visitor's stored trail: visits begun or continued, and page views.

The rules of what is stored (when a visit starts again, the time on a page) and
the batch writes the tracking service group-commits; the queries are in
storage/repositories/visitors.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import HubError, NotFound
from hub.models import Status, aware, iso
from hub.records import record_of
from storage.repositories import visitors as visitor_rows

# A visitor who comes back after this long without activity starts a new
# visit (the usual analytics definition of a session). Measured from their
# stored last-seen time, as the visit start finds it: written when a visit
# starts, with each page view, and when they leave (from their presence, see
# TrackingService._store_departures), never by the hello before the visit starts.
VISIT_GAP_SECONDS = 30 * 60
# A tab left open overnight is not "time on page"; cap what is stored.
MAX_PAGE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class PageView:
    id: int
    visitor_id: str
    visit: int
    url: str
    title: str | None
    referrer: str | None
    seconds: int | None
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "visit": self.visit,
            "url": self.url,
            "title": self.title,
            "referrer": self.referrer,
            "seconds": self.seconds,
            "at": iso(self.created_at),
        }

    @classmethod
    def of(cls, row: sa.Row) -> PageView:
        return record_of(cls, row)


def timed(views: list[PageView]) -> list[PageView]:
    """Oldest-first page views with the time on each page: until the next page of
    the same visit, or as stored when the visitor left."""
    out: list[PageView] = []
    for view, following in zip(views, [*views[1:], None], strict=False):
        if view.seconds is None and following is not None and following.visit == view.visit:
            gap = (following.created_at - view.created_at).total_seconds()
            view = replace(view, seconds=int(min(max(0.0, gap), MAX_PAGE_SECONDS)))
        out.append(view)
    return out


@dataclass(frozen=True)
class VisitStart:
    visitor_id: str
    at: datetime


@dataclass(frozen=True)
class Visit:
    """A visit begun or continued, as committed, and what the live view shows with it."""

    number: int
    started: datetime
    first_seen: datetime
    who: dict[str, Any]
    pages: list[sa.Row]  # the visit's page views so far, oldest first


async def store_visits(conn: AsyncConnection, starts: list[VisitStart]) -> list[Visit | HubError]:
    """Begin or continue the visit of each start, in order, with a few statements
    for the whole batch (see TrackingService._start_visit)."""
    rows = await visitor_rows.rows_by_id(conn, [start.visitor_id for start in starts])
    # visitor -> (visit number, visit started, last seen) as each start leaves it
    state = {
        r.id: (r.visit_count, r.visit_started_at, aware(r.last_seen_at)) for r in rows.values()
    }
    decided: list[tuple[int, datetime] | None] = []
    for start in starts:
        if start.visitor_id not in state:
            decided.append(None)
            continue
        count, started, last_seen = state[start.visitor_id]
        if started is None:
            started = start.at
        elif (start.at - last_seen).total_seconds() > VISIT_GAP_SECONDS:
            count, started = count + 1, start.at
        state[start.visitor_id] = (count, started, start.at)
        decided.append((count, started))
    known = sorted(state)  # in visitor order: nodes lock rows in one order
    if known:
        await visitor_rows.store_visits(conn, [(v, *state[v]) for v in known])
    who = await who_of(conn, known)
    visits = {(start.visitor_id, d[0]) for start, d in zip(starts, decided, strict=True) if d}
    pages: dict[tuple[str, int], list[sa.Row]] = {}
    if visits:  # continuing a visit (back from a sleeping laptop): where they were
        for page in await visitor_rows.pages_of_visits(conn, sorted(visits)):
            pages.setdefault((page.visitor_id, page.visit), []).append(page)
    results: list[Visit | HubError] = []
    for start, d in zip(starts, decided, strict=True):
        if d is None:
            results.append(NotFound(f"no visitor {start.visitor_id}"))
            continue
        count, started = d
        first_seen = rows[start.visitor_id].created_at
        page_list = pages.get((start.visitor_id, count), [])
        results.append(Visit(count, started, first_seen, who[start.visitor_id], page_list))
    return results


async def who_of(conn: AsyncConnection, visitor_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Who each visitor is (their contact) and whether they chat, by visitor."""
    if not visitor_ids:
        return {}
    chats = await visitor_rows.latest_conversations(conn, visitor_ids)
    who: dict[str, dict[str, Any]] = {}
    for row in await visitor_rows.who(conn, visitor_ids):
        chat = chats.get(row.visitor_id)
        who[row.visitor_id] = {
            # `claimed`: what the visitor typed or claimed, not verified.
            "contact": {
                "id": row.id,
                "name": row.name,
                "email": row.email,
                "claimed": dict(row.claimed or {}),
            },
            "known": bool(row.name or row.email or row.claimed),
            "chatting": chat is not None and chat.status != Status.RESOLVED.value,
            "conversation_id": chat.id if chat else None,
        }
    return who


async def store_page_views(
    conn: AsyncConnection, views: list[dict[str, Any]]
) -> list[int | HubError]:
    """Insert each page view (its id, in order) and make it its visitor's last page."""
    known = await visitor_rows.known(conn, sorted({view["visitor_id"] for view in views}))
    stored = [view for view in views if view["visitor_id"] in known]
    page_ids: Iterator[int] = iter(())
    if stored:
        page_ids = iter(await visitor_rows.insert_page_views(conn, stored))
        last = {view["visitor_id"]: view for view in stored}  # (the batch's latest)
        await visitor_rows.store_last_pages(
            conn,
            [
                (visitor_id, view["url"], view["title"], view["created_at"])
                for visitor_id, view in sorted(last.items())  # nodes lock rows in one order
            ],
        )
    return [
        next(page_ids)
        if view["visitor_id"] in known
        else NotFound(f"no visitor {view['visitor_id']}")
        for view in views
    ]
