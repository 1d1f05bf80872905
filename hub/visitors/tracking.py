"""Live visitors: page views, visits and presence. The only code that writes page views.

The widget reports each page (load and single-page-app navigation),
visibility changes, heartbeats and leaving. Each report updates the visitor's
presence snapshot (hub.visitor_presence) and, for pages, the stored trail;
agents get a `visitor` event on the `visitors` channel after every commit.
A visitor whose widget said "do not track" (GPC, DNT, or the site's script
attribute) is never stored nor shown here; their chat works as before.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import HubError, NotFound, from_the_store
from hub.events import topics
from hub.events.bus import EventBus
from hub.events.unit_of_work import store_write
from hub.models import Inbox, Status, Visitor, iso
from hub.visitors.devices import describe
from hub.visitors.pages import clean_optional_url, clean_title, clean_url, source, strip_pattern
from hub.visitors.presence import (
    IDLE_AFTER_SECONDS,
    LEAVE_AFTER_SECONDS,
    RECONNECT_GRACE_SECONDS,
    PresenceBackend,
    Snapshot,
)
from storage.batching import GroupCommit
from storage.db import Database
from storage.tables import contacts, conversations, page_views, visitors

if TYPE_CHECKING:
    from hub.visitors.campaigns import CampaignService

log = logging.getLogger(__name__)

# A visitor who comes back after this long without activity starts a new
# visit (the usual analytics definition of a session). Measured from their
# stored last-seen time, as the visit start finds it: written when a visit
# starts, with each page view, and when they leave (from their presence, see
# TrackingService._store_departures), never by the hello before the visit starts.
VISIT_GAP_SECONDS = 30 * 60
# A tab left open overnight is not "time on page"; cap what is stored.
MAX_PAGE_SECONDS = 6 * 3600
# The console shows this much history of one visitor.
TRAIL_VISITS = 10
TRAIL_PAGES_PER_VISIT = 100
# Sweep presence often: idle and left show within seconds.
SWEEP_EVERY_SECONDS = 5.0
# Visits begun or continued, and page views, per write transaction at most
# (group commit: a reconnect storm after a restart begins thousands at once,
# and a site's first visitors each store a page).
VISIT_BATCH_MAX = 500
PAGE_VIEW_BATCH_MAX = 500


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


def _page_view(row: sa.Row) -> PageView:
    return PageView(
        id=row.id,
        visitor_id=row.visitor_id,
        visit=row.visit,
        url=row.url,
        title=row.title,
        referrer=row.referrer,
        seconds=row.seconds,
        created_at=row.created_at,
    )


def _timed(views: list[PageView]) -> list[PageView]:
    """Oldest-first page views with the time on each page: until the next page of
    the same visit, or as stored when the visitor left."""
    timed: list[PageView] = []
    for view, following in zip(views, [*views[1:], None], strict=False):
        if view.seconds is None and following is not None and following.visit == view.visit:
            gap = (following.created_at - view.created_at).total_seconds()
            view = replace(view, seconds=int(min(max(0.0, gap), MAX_PAGE_SECONDS)))
        timed.append(view)
    return timed


def public(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as agents see it (internal `_` keys left out)."""
    return {k: v for k, v in snapshot.items() if not k.startswith("_")}


@dataclass(frozen=True)
class _VisitStart:
    visitor_id: str
    at: datetime


@dataclass(frozen=True)
class _Visit:
    """A visit begun or continued, as committed, and what the live view shows with it."""

    number: int
    started: datetime
    first_seen: datetime
    who: dict[str, Any]
    pages: list[sa.Row]  # the visit's page views so far, oldest first


async def _store_visits(
    conn: AsyncConnection, starts: list[_VisitStart]
) -> list[_Visit | HubError]:
    """Begin or continue the visit of each start, in order, with a few statements
    for the whole batch (see TrackingService._start_visit)."""
    ids = sorted({start.visitor_id for start in starts})
    rows = {
        row.id: row
        for row in await conn.execute(
            sa.select(
                visitors.c.id,
                visitors.c.visit_count,
                visitors.c.visit_started_at,
                visitors.c.last_seen_at,
                visitors.c.created_at,
            ).where(visitors.c.id.in_(ids))
        )
    }
    # visitor -> (visit number, visit started, last seen) as each start leaves it
    state = {
        row.id: (row.visit_count, row.visit_started_at, _utc(row.last_seen_at))
        for row in rows.values()
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
    known = sorted(state)
    if known:
        await conn.execute(
            _STORE_VISIT,
            [
                {"visitor": v, "count": state[v][0], "started": state[v][1], "seen": state[v][2]}
                for v in known  # in visitor order: nodes lock rows in one order
            ],
        )
    who = await _who_of(conn, known)
    visits = {(start.visitor_id, d[0]) for start, d in zip(starts, decided, strict=True) if d}
    pages: dict[tuple[str, int], list[sa.Row]] = {}
    if visits:
        # Continuing a visit (back from a sleeping laptop): where they were.
        for row in await conn.execute(
            sa.select(page_views)
            .where(sa.tuple_(page_views.c.visitor_id, page_views.c.visit).in_(sorted(visits)))
            .order_by(page_views.c.id)
        ):
            pages.setdefault((row.visitor_id, row.visit), []).append(row)
    results: list[_Visit | HubError] = []
    for start, d in zip(starts, decided, strict=True):
        if d is None:
            results.append(NotFound(f"no visitor {start.visitor_id}"))
            continue
        count, started = d
        results.append(
            _Visit(
                count,
                started,
                rows[start.visitor_id].created_at,
                who[start.visitor_id],
                pages.get((start.visitor_id, count), []),
            )
        )
    return results


async def _who_of(conn: AsyncConnection, visitor_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Who each visitor is (their contact) and whether they chat, by visitor."""
    if not visitor_ids:
        return {}
    contacts_of = await conn.execute(
        sa.select(
            visitors.c.id.label("visitor_id"), contacts.c.id, contacts.c.name, contacts.c.email
        )
        .select_from(visitors.join(contacts, contacts.c.id == visitors.c.contact_id))
        .where(visitors.c.id.in_(visitor_ids))
    )
    latest = (
        sa.select(sa.func.max(conversations.c.id))
        .where(conversations.c.visitor_id.in_(visitor_ids))
        .group_by(conversations.c.visitor_id)
    )
    chats = {
        chat.visitor_id: chat
        for chat in await conn.execute(
            sa.select(conversations.c.visitor_id, conversations.c.id, conversations.c.status).where(
                conversations.c.id.in_(latest.scalar_subquery())
            )
        )
    }
    who: dict[str, dict[str, Any]] = {}
    for row in contacts_of:
        chat = chats.get(row.visitor_id)
        who[row.visitor_id] = {
            "contact": {"id": row.id, "name": row.name, "email": row.email},
            "known": bool(row.name or row.email),
            "chatting": chat is not None and chat.status != Status.RESOLVED.value,
            "conversation_id": chat.id if chat else None,
        }
    return who


async def _store_page_views(
    conn: AsyncConnection, views: list[dict[str, Any]]
) -> list[int | HubError]:
    """Insert each page view (its id, in order) and make it its visitor's last page."""
    ids = sorted({view["visitor_id"] for view in views})
    known = set(await conn.scalars(sa.select(visitors.c.id).where(visitors.c.id.in_(ids))))
    stored = [view for view in views if view["visitor_id"] in known]
    page_ids = iter(())
    if stored:
        page_ids = iter(
            await conn.scalars(
                page_views.insert().returning(page_views.c.id, sort_by_parameter_order=True),
                stored,
            )
        )
        last = {view["visitor_id"]: view for view in stored}  # (the batch's latest)
        await conn.execute(
            _STORE_LAST_PAGE,
            [
                {
                    "visitor": visitor_id,
                    "url": view["url"],
                    "title": view["title"],
                    "seen": view["created_at"],
                }
                for visitor_id, view in sorted(last.items())  # nodes lock rows in one order
            ],
        )
    return [
        next(page_ids)
        if view["visitor_id"] in known
        else NotFound(f"no visitor {view['visitor_id']}")
        for view in views
    ]


def _utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone (they are UTC)."""
    return value.replace(tzinfo=value.tzinfo or UTC)


_STORE_VISIT = (
    visitors.update()
    .where(visitors.c.id == sa.bindparam("visitor"))
    .values(
        visit_count=sa.bindparam("count"),
        visit_started_at=sa.bindparam("started"),
        last_seen_at=sa.bindparam("seen"),
    )
)

# A stamp never moves the time back (a visitor back before the sweep came by).
_STORE_LAST_SEEN = (
    visitors.update()
    .where(visitors.c.id == sa.bindparam("visitor"))
    .where(visitors.c.last_seen_at < sa.bindparam("seen"))
    .values(last_seen_at=sa.bindparam("seen"))
)

_STORE_PAGE_SECONDS = (
    page_views.update()
    .where(page_views.c.id == sa.bindparam("page"))
    .where(page_views.c.seconds.is_(None))
    .values(seconds=sa.bindparam("secs"))
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


class TrackingService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        presence: PresenceBackend,
        strip_params: str,
        retention_days: int,
    ) -> None:
        self._db = db
        self._bus = bus
        self.presence = presence
        self._strip = strip_pattern(strip_params)
        self.retention_days = retention_days
        self.campaigns: CampaignService | None = None
        # Open widget sockets per visitor in this process (several tabs).
        self._sockets: dict[str, int] = {}
        self._visits = GroupCommit(db, _store_visits, what="visit", max_batch=VISIT_BATCH_MAX)
        self._page_views = GroupCommit(
            db, _store_page_views, what="page view", max_batch=PAGE_VIEW_BATCH_MAX
        )

    async def close(self) -> None:
        """Store the visits and page views already queued; refuse new ones. Store when
        each visitor still shown was last seen: after a restart they reconnect
        and must find their visit going on, however long ago it began."""
        await self._visits.close()
        await self._page_views.close()
        try:
            await self._store_departures(await self.presence.online(), left=False)
        except Exception:  # the hub stops all the same
            log.exception("the last-seen times of the visitors online were not stored")

    # ---- time ------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.presence.clock(), UTC)

    def _ts(self) -> float:
        return self.presence.clock()

    # ---- widget events ---------------------------------------------------------

    async def arrive(
        self,
        visitor: Visitor,
        inbox: Inbox,
        url: object = None,
        title: object = None,
        referrer: object = None,
    ) -> Snapshot:
        """A widget socket opened (a page load). Continues or starts a visit; records the page.

        A bad page address raises InvalidInput before anything changes.
        """
        clean = clean_url(url, self._strip) if url is not None else None
        self._sockets[visitor.id] = self._sockets.get(visitor.id, 0) + 1
        snapshot = await self.presence.get(inbox.id, visitor.id)
        if snapshot is None:
            snapshot = await self._start_visit(visitor, inbox)
        page = snapshot.get("page")
        if clean is not None and not (page and page["url"] == clean):
            # (a reconnect on the same page is no new page view)
            return await self.page_view(visitor, inbox, clean, title, referrer, snapshot=snapshot)
        return await self._touch_and_publish(inbox.id, snapshot, None)

    async def page_view(
        self,
        visitor: Visitor,
        inbox: Inbox,
        url: object,
        title: object = None,
        referrer: object = None,
        snapshot: Snapshot | None = None,
    ) -> Snapshot:
        """Store one page of the trail (validated and stripped) and tell the agents.

        Stored with the pages of other visitors in one transaction (group
        commit); the agents hear of it after that transaction has committed.
        """
        clean = clean_url(url, self._strip)
        page_title = clean_title(title)
        ref = clean_optional_url(referrer, self._strip)
        if snapshot is None:
            snapshot = await self.presence.get(inbox.id, visitor.id)
            if snapshot is None:
                snapshot = await self._start_visit(visitor, inbox)
        now = self.now()
        # Time on the previous page is the gap to this one (computed when read,
        # see _timed); only a visit's last page stores it, when the visitor leaves.
        page_id = await from_the_store(
            self._page_views.submit(
                {
                    "visitor_id": visitor.id,
                    "contact_id": snapshot["contact"]["id"],
                    "inbox_id": inbox.id,
                    "visit": snapshot["visit"],
                    "url": clean,
                    "title": page_title,
                    "referrer": ref,
                    "created_at": now,
                }
            )
        )
        view = PageView(page_id, visitor.id, snapshot["visit"], clean, page_title, ref, None, now)
        if snapshot["pages"] == 0 and ref is not None:
            snapshot["referrer"] = ref
            snapshot["source"] = source(ref, clean)
        snapshot["pages"] += 1
        snapshot["page"] = {
            "id": page_id,
            "url": clean,
            "title": page_title,
            "since": iso(now),
            "_since": self._ts(),
        }
        self._activity(snapshot)
        snapshot["state"] = "active"
        await self._touch_and_publish(inbox.id, snapshot, view)
        if self.campaigns is not None:
            await self.campaigns.on_page(inbox.id, snapshot)
        return snapshot

    async def visibility(self, visitor: Visitor, inbox: Inbox, visible: bool) -> None:
        snapshot = await self._current(visitor, inbox)
        state = "active" if visible else "hidden"
        if visible:
            self._activity(snapshot)
        if snapshot["state"] != state:
            snapshot["state"] = state
            await self._touch_and_publish(inbox.id, snapshot, None)
        else:
            await self._touch(inbox.id, snapshot, LEAVE_AFTER_SECONDS)

    async def heartbeat(self, visitor: Visitor, inbox: Inbox) -> None:
        """Keep the visitor online; after an expiry (a sleeping laptop) they come back."""
        snapshot = await self.presence.get(inbox.id, visitor.id)
        if snapshot is None:
            snapshot = await self._start_visit(visitor, inbox)
            await self._touch_and_publish(inbox.id, snapshot, None)
            return
        await self._touch(inbox.id, snapshot, LEAVE_AFTER_SECONDS)

    async def left(self, visitor: Visitor, inbox: Inbox) -> None:
        """A widget socket closed or said `leave`: gone unless another page reconnects soon."""
        count = self._sockets.get(visitor.id, 0) - 1
        if count > 0:
            self._sockets[visitor.id] = count
            return
        self._sockets.pop(visitor.id, None)
        if self.campaigns is not None:
            self.campaigns.cancel(visitor.id)
        snapshot = await self.presence.get(inbox.id, visitor.id)
        if snapshot is not None:
            await self._touch(inbox.id, snapshot, RECONNECT_GRACE_SECONDS)

    async def refresh(self, visitor_id: str) -> None:
        """Re-read who the visitor is and whether they chat (after a message or identify)."""
        async with self._db.read() as conn:
            inbox_id = await conn.scalar(
                sa.select(visitors.c.inbox_id).where(visitors.c.id == visitor_id)
            )
        if inbox_id is None:
            return
        snapshot = await self.presence.get(inbox_id, visitor_id)
        if snapshot is None:
            return
        async with self._db.read() as conn:
            snapshot.update(await self._who(conn, visitor_id))
        await self._touch_and_publish(inbox_id, snapshot, None, seen=False)

    # ---- agents' view ------------------------------------------------------------

    async def online(self, site: int | None = None) -> list[dict[str, Any]]:
        """Every visitor online now, most recently active first."""
        snapshots = await self.presence.online(site)
        snapshots.sort(key=lambda s: s.get("_active", 0), reverse=True)
        views = []
        for snapshot in snapshots:
            view = public(snapshot)
            if self._idle_due(snapshot):  # the sweep will tell everyone; show it already
                view["state"] = "idle"
            views.append(view)
        return views

    async def visitor_view(self, visitor_id: str) -> dict[str, Any]:
        """One visitor: live snapshot if online, and their trail by visit (newest first)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(sa.select(visitors).where(visitors.c.id == visitor_id))
            ).first()
            if row is None:
                raise NotFound(f"no visitor {visitor_id}")
            who = await self._who(conn, visitor_id)
            rows = (
                await conn.execute(
                    sa.select(page_views)
                    .where(page_views.c.visitor_id == visitor_id)
                    .where(page_views.c.visit > row.visit_count - TRAIL_VISITS)
                    .order_by(page_views.c.id)
                )
            ).all()
        snapshot = await self.presence.get(row.inbox_id, visitor_id)
        by_visit: dict[int, list[dict[str, Any]]] = {}
        for pv in _timed([_page_view(row) for row in rows]):
            by_visit.setdefault(pv.visit, []).append(pv.to_wire())
        visits = [
            {"visit": n, "pages": pages[-TRAIL_PAGES_PER_VISIT:], "started_at": pages[0]["at"]}
            for n, pages in sorted(by_visit.items(), reverse=True)
        ]
        return {
            "id": visitor_id,
            "online": snapshot is not None,
            "live": public(snapshot) if snapshot else None,
            "visit_count": row.visit_count,
            "first_seen": iso(row.created_at),
            "last_seen": iso(row.last_seen_at),
            "device": describe(row.user_agent).to_wire(),
            **who,
            "visits": visits,
        }

    async def recent_pages(self, visitor_id: str, limit: int = 10) -> list[PageView]:
        """The visitor's latest pages, newest first."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(page_views)
                    .where(page_views.c.visitor_id == visitor_id)
                    .order_by(page_views.c.id.desc())
                    .limit(limit + 1)  # one more: the time on the oldest shown
                )
            ).all()
        return list(reversed(_timed([_page_view(row) for row in reversed(rows)])))[:limit]

    # ---- maintenance -------------------------------------------------------------

    async def sweep(self) -> None:
        """Publish idle visitors and those who left; store their last page's time and
        when they were last seen (one transaction for all who left)."""
        gone = await self.presence.expired()
        for _, visitor_id, _ in gone:
            self._sockets.pop(visitor_id, None)
            if self.campaigns is not None:
                self.campaigns.cancel(visitor_id)
        if gone:
            try:
                await self._store_departures([snapshot for _, _, snapshot in gone], left=True)
            except Exception:  # they have left all the same; the agents must hear it
                log.exception("the departure of %d visitors was not stored", len(gone))
        for site, visitor_id, _ in gone:
            await self._bus.publish(
                topics.VISITORS,
                {"type": "visitor_left", "visitor_id": visitor_id, "inbox_id": site},
            )
        for snapshot in await self.presence.online():
            if self._idle_due(snapshot):
                snapshot["state"] = "idle"
                await self._touch_and_publish(
                    snapshot["inbox"]["id"], snapshot, None, keep=True, seen=False
                )

    async def cleanup(self, now: datetime | None = None) -> int:
        """Delete page views older than the retention period; returns how many."""
        cutoff = (now or self.now()) - timedelta(days=self.retention_days)
        async with store_write(self._db) as conn:
            result = await conn.execute(page_views.delete().where(page_views.c.created_at < cutoff))
        return result.rowcount or 0

    async def sweep_forever(self) -> None:
        """Background loop in every web process: idle and leave the visitors it holds.

        (Old page views are removed by the `pageview-retention` job of the worker.)
        """
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("visitor sweep failed; trying again shortly")
            await asyncio.sleep(SWEEP_EVERY_SECONDS)

    # ---- internals -----------------------------------------------------------------

    def _seconds_since(self, since: float, until: float | None = None) -> int:
        end = self._ts() if until is None else until
        return int(min(max(0.0, end - since), MAX_PAGE_SECONDS))

    def _activity(self, snapshot: Snapshot) -> None:
        snapshot["_active"] = self._ts()
        snapshot["last_active"] = iso(self.now())

    def _idle_due(self, snapshot: Snapshot) -> bool:
        """An active visitor without activity for IDLE_AFTER_SECONDS."""
        return (
            snapshot["state"] == "active" and self._ts() - snapshot["_active"] >= IDLE_AFTER_SECONDS
        )

    async def _current(self, visitor: Visitor, inbox: Inbox) -> Snapshot:
        snapshot = await self.presence.get(inbox.id, visitor.id)
        return snapshot if snapshot is not None else await self._start_visit(visitor, inbox)

    async def _start_visit(self, visitor: Visitor, inbox: Inbox) -> Snapshot:
        """Begin a visit, or continue the last one if it ended within VISIT_GAP_SECONDS.

        Stored with the visits of other visitors in one transaction (group
        commit); returns after that transaction has committed.
        """
        visit = await from_the_store(self._visits.submit(_VisitStart(visitor.id, self.now())))
        pages = visit.pages
        device = describe(visitor.user_agent)
        snapshot: Snapshot = {
            "id": visitor.id,
            "inbox": {"id": inbox.id, "name": inbox.name},
            "state": "active",
            "visit": visit.number,
            "visit_count": visit.number,
            "returning": visit.number > 1,
            "first_seen": iso(visit.first_seen),
            "site_since": iso(visit.started),
            "pages": len(pages),
            "page": None,
            "referrer": pages[0].referrer if pages else None,
            "source": "Direct",
            "device": device.to_wire(),
            **visit.who,
        }
        if pages:
            last = pages[-1]
            snapshot["source"] = source(pages[0].referrer, pages[0].url)
            since = last.created_at.replace(tzinfo=last.created_at.tzinfo or UTC)
            snapshot["page"] = {
                "id": last.id,
                "url": last.url,
                "title": last.title,
                "since": iso(since),
                "_since": since.timestamp(),
            }
        self._activity(snapshot)
        return snapshot

    async def _store_departures(self, snapshots: list[Snapshot], left: bool) -> None:
        """Store when each visitor was last seen, from their presence: a visitor's
        heartbeats and frames are not written one by one, so without this a visitor
        who stayed an hour would look an hour away when they come back. When they
        `left`, also the time on their last page."""
        seen: dict[str, float] = {}
        for snapshot in snapshots:
            active: float = snapshot["_active"]
            at = snapshot.get("_seen", active)  # (snapshots from before _seen)
            seen[snapshot["id"]] = max(at, seen.get(snapshot["id"], at))
        pages = [
            {
                "page": snapshot["page"]["id"],
                "secs": self._seconds_since(snapshot["page"]["_since"], snapshot["_active"]),
            }
            for snapshot in snapshots
            if left and snapshot.get("page")
        ]
        if not seen:
            return
        async with store_write(self._db) as conn:
            if pages:
                await conn.execute(_STORE_PAGE_SECONDS, sorted(pages, key=lambda p: p["page"]))
            await conn.execute(
                _STORE_LAST_SEEN,
                [
                    {"visitor": visitor_id, "seen": datetime.fromtimestamp(at, UTC)}
                    for visitor_id, at in sorted(seen.items())  # nodes lock rows in one order
                ],
            )

    async def _who(self, conn: AsyncConnection, visitor_id: str) -> dict[str, Any]:
        return (await _who_of(conn, [visitor_id]))[visitor_id]

    async def _touch(self, site: int, snapshot: Snapshot, ttl: float, seen: bool = True) -> None:
        """Keep the visitor online `ttl` more seconds; `seen`: because of something they did
        (stored as their last-seen time when they leave, see _store_departures)."""
        now = self._ts()
        snapshot["_expires"] = now + ttl
        if seen:
            snapshot["_seen"] = now
        await self.presence.touch(site, snapshot["id"], snapshot, ttl)

    async def _touch_and_publish(
        self,
        site: int,
        snapshot: Snapshot,
        view: PageView | None,
        keep: bool = False,
        seen: bool = True,
    ) -> Snapshot:
        ttl = max(0.0, snapshot["_expires"] - self._ts()) if keep else LEAVE_AFTER_SECONDS
        await self._touch(site, snapshot, ttl, seen)
        await self._bus.publish(
            topics.VISITORS,
            {
                "type": "visitor",
                "visitor": public(snapshot),
                "page_view": view.to_wire() if view else None,
            },
        )
        return snapshot
