"""Proactive campaigns: admins' rules for messages that open the widget by themselves.

A campaign matches a page (exact URL, prefix or wildcard), waits until the
visitor has been on that page for its seconds, and checks new/returning,
business hours and whether an agent is online at the moment it fires. It is
shown at most once per visitor (the delivery row's primary key). A reply to
its message opens a conversation that records the campaign
(ConversationService.ingest with `campaign_id`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.errors import InvalidInput, NotFound
from hub.events import topics
from hub.events.bus import EventBus
from hub.events.unit_of_work import store_write
from hub.inboxes.business_hours import BusinessHoursService
from hub.models import iso
from hub.records import record_of
from hub.text import clean_text
from hub.visitors.presence import PresenceBackend, Snapshot
from storage.db import Database
from storage.repositories import campaigns as campaign_rows

URL_MATCHES = ("exact", "prefix", "wildcard")
# What admins edit (clean_fields returns exactly these).
FIELDS = (
    "name",
    "message",
    "sender_name",
    "url_match",
    "url_pattern",
    "min_seconds",
    "audience",
    "business_hours_only",
    "agents_online_only",
    "enabled",
)
AUDIENCES = ("all", "new", "returning")
MAX_MESSAGE_CHARS = 1000
MAX_PATTERN_CHARS = 500
# Nobody waits on one page for more than an hour for a chat offer.
MAX_SECONDS_ON_PAGE = 3600

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Campaign:
    id: int
    inbox_id: int
    inbox_name: str
    name: str
    message: str
    sender_name: str
    url_match: str
    url_pattern: str
    min_seconds: int
    audience: str
    business_hours_only: bool
    agents_online_only: bool
    enabled: bool
    created_at: datetime
    shown: int = 0
    replied: int = 0

    def matches(self, url: str, returning: bool) -> bool:
        """The rules that depend on the page and the visitor (not on the moment)."""
        if self.audience == "new" and returning:
            return False
        if self.audience == "returning" and not returning:
            return False
        return url_matches(self.url_match, self.url_pattern, url)

    def to_wire(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = iso(self.created_at)
        return data


def url_matches(kind: str, pattern: str, url: str) -> bool:
    """`exact` and `prefix` compare strings; `wildcard` lets `*` stand for anything.

    A pattern starting with "/" is compared with the URL's path (and query),
    so one campaign serves a site under several host names.
    """
    if pattern.startswith("/"):
        rest = url.split("://", 1)[-1]
        url = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        url = url.split("#", 1)[0]
    if kind == "exact":
        return url == pattern or url.rstrip("/") == pattern.rstrip("/")
    if kind == "prefix":
        return url.startswith(pattern)
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, url) is not None


def _campaign(row: sa.Row) -> Campaign:
    return record_of(
        Campaign,
        row,
        shown=getattr(row, "shown", 0) or 0,
        replied=getattr(row, "replied", 0) or 0,
    )


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.lower() in {"1", "true", "on", "yes"}


def clean_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validated campaign fields from a console form or JSON body."""
    url_match = data.get("url_match", "prefix")
    if url_match not in URL_MATCHES:
        raise InvalidInput("match must be exact, prefix or wildcard")
    audience = data.get("audience", "all")
    if audience not in AUDIENCES:
        raise InvalidInput("visitors must be all, new or returning")
    seconds = data.get("min_seconds", 0)
    if isinstance(seconds, str) and seconds.strip().isdigit() and len(seconds) < 8:
        seconds = int(seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidInput("seconds on page must be a whole number")
    if not 0 <= seconds <= MAX_SECONDS_ON_PAGE:
        raise InvalidInput(f"seconds on page must be 0 to {MAX_SECONDS_ON_PAGE}")
    pattern = clean_text(data.get("url_pattern", ""), MAX_PATTERN_CHARS, "URL pattern")
    if not pattern.startswith(("/", "http://", "https://")) and pattern != "*":
        raise InvalidInput("URL pattern starts with / (a path) or http(s):// (a full address)")
    return {
        "name": clean_text(data.get("name", ""), 100, "name"),
        "message": clean_text(data.get("message", ""), MAX_MESSAGE_CHARS, "message"),
        "sender_name": clean_text(data.get("sender_name", ""), 100, "sender"),
        "url_match": url_match,
        "url_pattern": pattern,
        "min_seconds": seconds,
        "audience": audience,
        "business_hours_only": _flag(data.get("business_hours_only", False)),
        "agents_online_only": _flag(data.get("agents_online_only", False)),
        "enabled": _flag(data.get("enabled", True)),
    }


class CampaignService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        presence: PresenceBackend,
        hours: BusinessHoursService,
        agents_online: Callable[[], bool],
    ) -> None:
        self._db = db
        self._bus = bus
        self._presence = presence
        self._hours = hours
        self._agents_online = agents_online
        # Tests replace this to decide when "N seconds on the page" have passed.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._timers: dict[str, list[asyncio.Task[bool]]] = {}
        # Enabled campaigns per inbox, read once and dropped on every change:
        # page views are frequent, campaign edits rare.
        self._cache: dict[int, list[Campaign]] = {}

    # ---- admins --------------------------------------------------------------

    async def create(self, inbox_id: int, data: dict[str, Any]) -> Campaign:
        fields = clean_fields(data)
        async with store_write(self._db) as conn:
            campaign_id = await campaign_rows.insert(
                conn, {"inbox_id": inbox_id, "created_at": datetime.now(UTC), **fields}
            )
            if campaign_id is None:
                raise InvalidInput(f"no inbox {inbox_id}")
        self._cache.clear()
        return await self.get(campaign_id)

    async def update(self, campaign_id: int, data: dict[str, Any]) -> Campaign:
        fields = clean_fields(data)
        async with store_write(self._db) as conn:
            if not await campaign_rows.update(conn, campaign_id, fields):
                raise NotFound(f"no campaign {campaign_id}")
        self._cache.clear()
        return await self.get(campaign_id)

    async def get(self, campaign_id: int) -> Campaign:
        async with self._db.read() as conn:
            row = await campaign_rows.row(conn, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id}")
        return _campaign(row)

    async def list(self) -> list[Campaign]:
        async with self._db.read() as conn:
            rows = await campaign_rows.all_rows(conn)
        return [_campaign(row) for row in rows]

    # ---- matching ------------------------------------------------------------

    async def _enabled(self, inbox_id: int) -> builtins.list[Campaign]:
        if inbox_id not in self._cache:
            async with self._db.read() as conn:
                rows = await campaign_rows.enabled_in(conn, inbox_id)
            self._cache[inbox_id] = [_campaign(row) for row in rows]
        return self._cache[inbox_id]

    async def on_page(self, inbox_id: int, snapshot: Snapshot) -> None:
        """A visitor opened a page: (re)arm the timers of the campaigns that match it."""
        self.cancel(snapshot["id"])
        page = snapshot.get("page")
        if not page:
            return
        matching = [
            c
            for c in await self._enabled(inbox_id)
            if c.matches(page["url"], snapshot["returning"])
        ]
        if matching:
            self._timers[snapshot["id"]] = [
                asyncio.create_task(self._after(c, inbox_id, snapshot["id"], page["id"]))
                for c in matching
            ]

    def cancel(self, visitor_id: str) -> None:
        for task in self._timers.pop(visitor_id, []):
            task.cancel()

    async def _after(
        self, campaign: Campaign, inbox_id: int, visitor_id: str, page_id: int
    ) -> bool:
        try:
            await self.sleep(campaign.min_seconds)
            return await self.fire(campaign, inbox_id, visitor_id, page_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign %s failed for visitor %s", campaign.id, visitor_id)
            return False

    async def fire(self, campaign: Campaign, inbox_id: int, visitor_id: str, page_id: int) -> bool:
        """Show the campaign now if every rule still holds; False if it was not shown."""
        snapshot = await self._presence.get(inbox_id, visitor_id)
        if snapshot is None or not snapshot.get("page") or snapshot["page"]["id"] != page_id:
            return False  # left, or moved on before the seconds were up
        if snapshot.get("chatting"):
            return False  # already talking to someone: do not interrupt
        if campaign.agents_online_only and not self._agents_online():
            return False
        now = datetime.fromtimestamp(self._presence.clock(), UTC)
        if campaign.business_hours_only and not await self._hours.is_open(inbox_id, now):
            return False
        async with store_write(self._db) as conn:
            if not await campaign_rows.record_shown(conn, campaign.id, visitor_id, now):
                return False  # shown to this visitor before: once per visitor per campaign
        await self._bus.publish(
            topics.visitor_channel(visitor_id),
            {
                "type": "campaign",
                "campaign": {
                    "id": campaign.id,
                    "text": campaign.message,
                    "author": {"type": "campaign", "name": campaign.sender_name},
                    "created_at": iso(now),
                },
            },
        )
        await self._bus.publish(
            topics.inbox_channel(campaign.inbox_id),
            {"type": "campaign_shown", "campaign_id": campaign.id},
        )
        return True
