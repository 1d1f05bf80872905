"""Calls' threading (their `Locator` in the inbound pipeline): a caller's calls
line up in one conversation per voice inbox, opened resolved (nothing needs
doing until a call is missed, which reopens it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.pipeline import Opening
from hub.models import Inbound, Message, Status
from storage.repositories import conversations as rows


class VoiceThreading:
    async def locate(
        self, conn: AsyncConnection, inbound: Inbound, contact_id: int
    ) -> int | Opening:
        found = await rows.latest_in_inbox(conn, inbound.inbox_id, contact_id)
        return found if found is not None else Opening(status=Status.RESOLVED)

    async def opened(
        self, conn: AsyncConnection, inbound: Inbound, conversation_id: int, opening: Opening
    ) -> list[Message]:
        return []
