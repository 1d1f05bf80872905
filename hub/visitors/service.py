"""Visitors of a website and the contacts they belong to."""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import InvalidInput, NotFound, TooLarge, Unverified, from_the_store
from hub.events.domain import ContactUpdated
from hub.events.unit_of_work import Writes, store_write
from hub.models import Contact, Inbox, Visitor
from hub.records import record_of
from hub.security import verify_identity
from hub.text import clean_email, clean_optional
from storage.batching import GroupCommit, GroupRead
from storage.repositories import contacts as contact_rows
from storage.repositories import visitors as visitor_rows

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_VALUE = 500
# Every untracked widget hello stamps the visitor's last-seen time (a tracked
# one is stamped by the visit it starts, hub.tracking, which must read the time
# before it), and a reconnect storm is thousands of hellos at once. Agents read
# it to the minute, so a process stores it at most this often per visitor (a
# later hello within the minute is not written), and the stamps of many hellos
# share one transaction.
SEEN_EVERY_SECONDS = 60.0
SEEN_BATCH_MAX = 500
# Visitors found per read at most by `lookup` (the same storm looks up as many).
LOOKUP_BATCH_MAX = 500
# Visitors created per transaction at most (a site's first hellos, many at once).
CREATE_BATCH_MAX = 500


def _visitor(row: sa.Row) -> Visitor:
    return record_of(Visitor, row)


def _contact(row: sa.Row) -> Contact:
    return record_of(Contact, row, claimed=row.claimed or {})


def clean_attributes(value: object) -> dict[str, Any]:
    """Custom attributes from a site: flat, small, plain JSON scalars."""
    if not isinstance(value, dict):
        raise InvalidInput("attributes must be an object")
    if len(value) > MAX_ATTRIBUTES:
        raise TooLarge(f"at most {MAX_ATTRIBUTES} attributes")
    cleaned: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_ATTRIBUTE_NAME:
            raise InvalidInput(f"attribute names are 1-{MAX_ATTRIBUTE_NAME} characters")
        if isinstance(item, str):
            if len(item) > MAX_ATTRIBUTE_VALUE:
                raise TooLarge(f"attribute {name} is longer than {MAX_ATTRIBUTE_VALUE}")
        elif not (item is None or isinstance(item, bool | int | float)):
            raise InvalidInput(f"attribute {name} must be a string, number, boolean or null")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"attribute {name} must be a finite number (standard JSON)")
        cleaned[name] = item
    return cleaned


@dataclass(frozen=True)
class _Seen:
    visitor_id: str
    at: datetime


async def _store_seen(conn: AsyncConnection, stamps: list[_Seen]) -> list[None]:
    # In visitor order: writers on several nodes lock rows in one order.
    rows = sorted(stamps, key=lambda stamp: stamp.visitor_id)
    await visitor_rows.stamp_seen(conn, [(stamp.visitor_id, stamp.at) for stamp in rows])
    return [None] * len(stamps)


@dataclass(frozen=True)
class _NewVisitor:
    inbox_id: int
    user_agent: str | None
    at: datetime


async def _store_new_visitors(conn: AsyncConnection, new: list[_NewVisitor]) -> list[Visitor]:
    contact_ids = await contact_rows.create_many(conn, [n.at for n in new])
    rows = await visitor_rows.insert_many(
        conn,
        [
            {
                "id": "v_" + secrets.token_urlsafe(16),
                "inbox_id": n.inbox_id,
                "contact_id": contact_id,
                "user_agent": n.user_agent,
                "created_at": n.at,
                "last_seen_at": n.at,
            }
            for n, contact_id in zip(new, contact_ids, strict=True)
        ],
    )
    return [_visitor(row) for row in rows]


async def _load_visitors(conn: AsyncConnection, ids: list[str]) -> list[Visitor | None]:
    rows = await visitor_rows.rows_by_id(conn, ids)
    return [_visitor(rows[visitor_id]) if visitor_id in rows else None for visitor_id in ids]


class VisitorService:
    def __init__(
        self,
        writes: Writes,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._writes = writes
        self._db = writes.db
        self.clock = clock  # for SEEN_EVERY_SECONDS
        # Seconds since the epoch for the times stored (created, last seen): the same
        # clock as hub.tracking's, which compares them with its own.
        self.wall_clock = wall_clock
        self._seen = GroupCommit(
            self._db, _store_seen, what="last-seen time", max_batch=SEEN_BATCH_MAX
        )
        self._lookups = GroupRead(
            self._db, _load_visitors, what="visitor", max_batch=LOOKUP_BATCH_MAX
        )
        self._creations = GroupCommit(
            self._db, _store_new_visitors, what="new visitor", max_batch=CREATE_BATCH_MAX
        )
        # Visitor -> when this process last stored their last-seen time, oldest first.
        self._stamped: OrderedDict[str, float] = OrderedDict()

    async def close(self) -> None:
        """Store the visitors and last-seen times already queued; refuse new ones."""
        await self._creations.close()
        await self._seen.close()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    async def create(self, inbox: Inbox, user_agent: str | None = None) -> Visitor:
        """A new visitor of the website with a contact of their own, as stored. The
        visitors created together (many first hellos at once) share one transaction."""
        return await from_the_store(
            self._creations.submit(
                _NewVisitor(inbox.id, (user_agent or "")[:400] or None, self._now())
            )
        )

    async def get(self, visitor_id: str) -> Visitor | None:
        async with self._db.read() as conn:
            row = await visitor_rows.row(conn, visitor_id)
        return _visitor(row) if row else None

    async def lookup(self, visitor_id: str) -> Visitor | None:
        """`get` for the widget's hello: lookups that arrive together share one
        query (after a restart thousands of widgets say hello at once)."""
        return await from_the_store(self._lookups.submit(visitor_id))

    async def contact(self, contact_id: int) -> Contact | None:
        async with self._db.read() as conn:
            return await contact_in(conn, contact_id)

    async def seen(self, visitor_id: str, url: str | None = None, title: str | None = None) -> None:
        """Record the visitor's last-seen time (and current page, when given).

        Returns once stored. A time alone is stored with those of other
        visitors in one transaction, and not at all when this process stored
        one for the visitor less than SEEN_EVERY_SECONDS ago.
        """
        if url is not None:
            values: dict[str, Any] = {
                "last_seen_at": self._now(),
                "last_page_url": url[:2000],
                "last_page_title": (title or "")[:300] or None,
            }
            async with store_write(self._db) as conn:
                await visitor_rows.update(conn, visitor_id, values)
            return
        now = self.clock()
        while self._stamped:  # forget stamps old enough to be written again
            oldest, at = next(iter(self._stamped.items()))
            if now - at < SEEN_EVERY_SECONDS:
                break
            del self._stamped[oldest]
        if visitor_id in self._stamped:
            return
        await from_the_store(self._seen.submit(_Seen(visitor_id, self._now())))
        self._stamped[visitor_id] = self.clock()

    async def identify(
        self,
        visitor: Visitor,
        inbox: Inbox,
        external_id: object,
        email: object = None,
        name: object = None,
        claimed_hash: object = None,
    ) -> Contact:
        """Attach a site's logged-in user to this visitor.

        A verified claim (valid HMAC of the id) links the visitor to the contact
        with that external id, merging their history, and sets its name and email.
        An unverified claim is refused when the inbox requires verification, and
        otherwise only labels the visitor's own contact (`Contact.claimed`): it
        stores no id or email anything is later joined on, and changes nothing
        on a contact a verified identity owns.
        """
        user_id = clean_optional(external_id, 200, "id")
        if user_id is None:
            raise InvalidInput("id is required")
        if claimed_hash is not None and not isinstance(claimed_hash, str):
            raise InvalidInput("hash must be a string")
        verified = bool(inbox.identity_secret) and verify_identity(
            inbox.identity_secret or "", user_id, claimed_hash
        )
        if not verified and (inbox.require_identity or claimed_hash):
            raise Unverified("identity not verified: the hash does not match the user id")
        said = {"name": clean_optional(name, 200, "name"), "email": clean_email(email)}
        details = {key: value for key, value in said.items() if value}
        async with self._writes.begin() as work:
            conn = work.conn
            if verified:
                contact_id = await self._verified(conn, visitor, user_id, details)
            else:
                contact_id = visitor.contact_id
                await self._claimed(conn, contact_id, user_id, details)
            contact = await contact_in(conn, contact_id)
            if contact is None:
                raise NotFound(f"no contact {contact_id}")
            work.emit(ContactUpdated(contact, (visitor.inbox_id,)))
        return contact

    async def _verified(
        self, conn: AsyncConnection, visitor: Visitor, user_id: str, details: dict[str, str]
    ) -> int:
        """The contact of a proven user id, with this visitor (and their
        conversations and page trail) on it; the visitor's claims are answered."""
        existing = await contact_rows.by_external_id(conn, user_id)
        contact_id = visitor.contact_id
        values: dict[str, Any] = dict(details)
        if existing is not None and existing != visitor.contact_id:
            contact_id = existing
            await contact_rows.move_visitor(conn, visitor.id, contact_id)
            values["claimed"] = None
        elif existing is None:
            values["external_id"] = user_id
            # The proof answers the claimed id and email; a claimed name it does
            # not replace stays marked as claimed.
            own = await contact_rows.row(conn, contact_id)
            name = (own.claimed or {}).get("name") if own is not None else None
            values["claimed"] = {"name": name} if name and "name" not in details else None
        await contact_rows.update(conn, contact_id, values)
        return contact_id

    async def _claimed(
        self, conn: AsyncConnection, contact_id: int, user_id: str, details: dict[str, str]
    ) -> None:
        """Label the visitor's own contact with what they claim, unless a verified
        identity owns it: then an unsigned frame changes nothing."""
        own = await contact_rows.row(conn, contact_id)
        if own is None or own.external_id is not None:
            return
        values: dict[str, Any] = {"claimed": {"id": user_id, **details}}
        if "name" in details:  # names are joined on nothing: a label for agents' lists
            values["name"] = details["name"]
        await contact_rows.update(conn, contact_id, values)

    async def set_attributes(
        self, visitor: Visitor, attributes: object, verified: bool = False
    ) -> Contact:
        """Merge a site's attributes into the visitor's contact. As with identify, a
        contact a verified identity owns changes only for a `verified` socket (one
        that proved that identity); for any other the frame changes nothing."""
        cleaned = clean_attributes(attributes)
        async with store_write(self._db) as conn:
            own = await contact_rows.row(conn, visitor.contact_id)
            if own is None:
                raise NotFound(f"no contact {visitor.contact_id}")
            if own.external_id is not None and not verified:
                return _contact(own)
            current = await contact_rows.attributes(conn, visitor.contact_id)
            merged = {**(current or {}), **cleaned}
            if len(merged) > MAX_ATTRIBUTES * 2:
                raise TooLarge("too many attributes on this contact")
            await contact_rows.update(conn, visitor.contact_id, {"attributes": merged})
        contact = await self.contact(visitor.contact_id)
        assert contact is not None
        return contact


def told_visitor(contact: Contact) -> dict[str, str | None]:
    """The details a visitor is shown of their own contact: the verified ones
    once a verified identity owns it, else only what they claimed themselves."""
    if contact.external_id is not None:
        return {"name": contact.name, "email": contact.email}
    return {"name": contact.claimed.get("name"), "email": contact.claimed.get("email")}


async def contact_in(conn: AsyncConnection, contact_id: int) -> Contact | None:
    """A contact as this transaction sees it."""
    row = await contact_rows.row(conn, contact_id)
    return _contact(row) if row else None
