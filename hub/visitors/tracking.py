"""Live visitors: page views, visits and presence. The only code that writes page views.

The widget reports each page (load and single-page-app navigation),
visibility changes, heartbeats and leaving. Each report updates the visitor's
presence snapshot (hub.visitor_presence) and, for pages, the stored trail;
agents get a `visitor` event on the `visitors` channel after every commit.
A visitor whose widget said "do not track" (GPC, DNT, or the site's script
attribute) is never stored nor shown here; their chat works as before.

Longer than ~400 lines on purpose: one live service whose every method reads and
writes the same per-visitor state (presence snapshot, open sockets, the idle and
departure sweep); what is stored of visits and page views is in trail.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound, from_the_store
from hub.events import topics
from hub.events.bus import EventBus
from hub.events.unit_of_work import store_write
from hub.models import Inbox, Visitor, aware, iso
from hub.visitors.devices import describe
from hub.visitors.pages import clean_optional_url, clean_title, clean_url, source, strip_pattern
from hub.visitors.presence import (
    IDLE_AFTER_SECONDS,
    LEAVE_AFTER_SECONDS,
    RECONNECT_GRACE_SECONDS,
    PresenceBackend,
    Snapshot,
)
from hub.visitors.trail import (
    MAX_PAGE_SECONDS,
    PageView,
    VisitStart,
    store_page_views,
    store_visits,
    timed,
    who_of,
)
from storage.batching import GroupCommit
from storage.db import Database
from storage.repositories import visitors as visitor_rows

if TYPE_CHECKING:
    from hub.visitors.campaigns import CampaignService

log = logging.getLogger(__name__)

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


def public(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as agents see it (internal `_` keys left out)."""
    return {k: v for k, v in snapshot.items() if not k.startswith("_")}


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
        self._visits = GroupCommit(db, store_visits, what="visit", max_batch=VISIT_BATCH_MAX)
        self._page_views = GroupCommit(
            db, store_page_views, what="page view", max_batch=PAGE_VIEW_BATCH_MAX
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
        # see trail.timed); only a visit's last page stores it, when the visitor leaves.
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
            inbox_id = await visitor_rows.inbox_of(conn, visitor_id)
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
            row = await visitor_rows.row(conn, visitor_id)
            if row is None:
                raise NotFound(f"no visitor {visitor_id}")
            who = await self._who(conn, visitor_id)
            rows = await visitor_rows.trail(conn, visitor_id, row.visit_count - TRAIL_VISITS)
        snapshot = await self.presence.get(row.inbox_id, visitor_id)
        by_visit: dict[int, list[dict[str, Any]]] = {}
        for pv in timed([PageView.of(page) for page in rows]):
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
            # one more: the time on the oldest shown
            rows = await visitor_rows.latest_pages(conn, visitor_id, limit + 1)
        return list(reversed(timed([PageView.of(page) for page in reversed(rows)])))[:limit]

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
                topics.site_visitors(site),
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
            return await visitor_rows.delete_page_views_before(conn, cutoff)

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
        visit = await from_the_store(self._visits.submit(VisitStart(visitor.id, self.now())))
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
            since = aware(last.created_at)
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
            (
                snapshot["page"]["id"],
                self._seconds_since(snapshot["page"]["_since"], snapshot["_active"]),
            )
            for snapshot in snapshots
            if left and snapshot.get("page")
        ]
        if not seen:
            return
        async with store_write(self._db) as conn:
            if pages:
                await visitor_rows.store_page_seconds(conn, sorted(pages))
            await visitor_rows.stamp_seen(
                conn,
                [
                    (visitor_id, datetime.fromtimestamp(at, UTC))
                    for visitor_id, at in sorted(seen.items())  # nodes lock rows in one order
                ],
                forward_only=True,
            )

    async def _who(self, conn: AsyncConnection, visitor_id: str) -> dict[str, Any]:
        return (await who_of(conn, [visitor_id]))[visitor_id]

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
            topics.site_visitors(site),
            {
                "type": "visitor",
                "visitor": public(snapshot),
                "page_view": view.to_wire() if view else None,
            },
        )
        return snapshot
