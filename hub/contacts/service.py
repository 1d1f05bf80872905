"""Contacts as agents see and edit them: name, email, phone numbers, their conversations."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.contacts import phones
from hub.errors import InvalidInput, NotFound
from hub.events.domain import ContactUpdated
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import Contact
from hub.text import clean_email, clean_optional
from hub.visitors.service import VisitorService, contact_in
from storage.repositories import access as access_rows
from storage.repositories import contacts as contact_rows


class ContactService:
    def __init__(self, writes: Writes, visitors: VisitorService) -> None:
        self._writes = writes
        self._db = writes.db
        self._visitors = visitors

    async def get(self, contact_id: int) -> Contact:
        contact = await self._visitors.contact(contact_id)
        if contact is None:
            raise NotFound(f"no contact {contact_id}")
        return contact

    async def phones(self, contact_id: int) -> list[str]:
        """The contact's numbers in E.164."""
        async with self._db.read() as conn:
            return await contact_rows.phones(conn, contact_id)

    async def add_phone(
        self, contact_id: int, number: object, region: str, work: UnitOfWork | None = None
    ) -> str:
        """Another number the contact calls from; one number belongs to one contact.

        Stored in `work`, the caller's unit of work, when given (kept or rolled
        back with the rest of it), else in a unit of work of its own."""
        e164 = phones.normalize(number, region, "phone")
        if not phones.is_public(e164):
            raise InvalidInput("phone must be a full phone number", "phone")
        if work is not None:
            await self._add_phone(work.conn, contact_id, e164)
            return e164
        async with self._writes.begin() as own:
            await self._add_phone(own.conn, contact_id, e164)
        return e164

    async def _add_phone(self, conn: AsyncConnection, contact_id: int, e164: str) -> None:
        if not await contact_rows.exists(conn, contact_id):
            raise NotFound(f"no contact {contact_id}")
        owner = await contact_rows.claim_phone(conn, e164)
        if owner == contact_id:
            return  # already theirs: nothing to do
        if owner is not None:
            raise InvalidInput(f"{phones.display(e164)} belongs to another contact", "phone")
        await contact_rows.add_phone(conn, contact_id, e164)

    async def update(self, contact_id: int, name: object, email: object) -> Contact:
        """An agent names an unknown caller (or corrects a name or email). A saved
        detail the visitor only claimed is then confirmed: email may go to it."""
        values = {
            "name": clean_optional(name, 200, "name"),
            "email": clean_email(email),
        }
        if values["name"] is None and values["email"] is None:
            raise InvalidInput("give a name or an email", "name")
        async with self._writes.begin() as work:
            before = await contact_rows.row(work.conn, contact_id)
            if before is None:
                raise NotFound(f"no contact {contact_id}")
            claimed = {k: v for k, v in (before.claimed or {}).items() if values.get(k) != v}
            await contact_rows.update(work.conn, contact_id, {**values, "claimed": claimed or None})
            contact = await contact_in(work.conn, contact_id)
            assert contact is not None  # updated just now, in this transaction
            inbox_ids = await access_rows.inboxes_of(work.conn, "contact", contact_id)
            work.emit(ContactUpdated(contact, tuple(sorted(inbox_ids))))
        return contact
