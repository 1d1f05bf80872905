"""The one place that finds or creates the contact a message or call comes from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.contacts import phones
from hub.errors import Forbidden
from hub.models import Channel, Inbound, utcnow
from storage.repositories import contacts

_NAME_CHARS = 200


class ContactResolver:
    """Match the sender to a contact by what the channel knows of them, in this
    order: the visitor (web chat), the phone number (calls; a withheld number is
    a new contact each time), the email address, another system's id; no match
    makes a new contact with what is known."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock

    async def resolve(self, conn: AsyncConnection, inbound: Inbound) -> tuple[int, bool]:
        """The sender's contact, and whether it was created just now."""
        sender = inbound.sender
        if sender.visitor_id is not None:  # a visitor's contact exists with the visitor
            return await self._of_visitor(conn, inbound.inbox_id, sender.visitor_id), False
        name = sender.name[:_NAME_CHARS] if sender.name else None
        if inbound.channel is Channel.VOICE:
            return await self.for_number(conn, sender.phone)
        if sender.email is not None:
            found = await contacts.by_email(conn, sender.email)
            if found is not None:
                return found, False
            return await contacts.create(conn, self._clock(), name=name, email=sender.email), True
        if sender.external_id is not None:
            found = await contacts.by_external_id(conn, sender.external_id)
            if found is not None:
                return found, False
        created = await contacts.create(
            conn, self._clock(), name=name, external_id=sender.external_id
        )
        return created, True

    async def for_number(self, conn: AsyncConnection, number: str | None) -> tuple[int, bool]:
        """The contact with this number, or a new one (withheld: a new one each time);
        and whether it is new."""
        if not phones.is_public(number):
            return await contacts.create(conn, self._clock()), True
        assert number is not None  # a public number is a number
        found = await contacts.claim_phone(conn, number)
        if found is not None:
            return found, False
        contact_id = await contacts.create(conn, self._clock())
        await contacts.add_phone(conn, contact_id, number)
        return contact_id, True

    async def _of_visitor(self, conn: AsyncConnection, inbox_id: int, visitor_id: str) -> int:
        found = await contacts.of_visitor(conn, visitor_id)
        if found is None or found.inbox_id != inbox_id:
            raise Forbidden("unknown visitor for this inbox")
        contact_id: int = found.contact_id
        return contact_id
