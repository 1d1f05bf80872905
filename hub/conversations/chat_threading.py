"""Web chat's threading (its `Locator` in the inbound pipeline): a visitor's
message goes to the conversation their widget shows, else their latest one; a
reply to a proactive campaign's message opens a conversation of its own that
the campaign's message starts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import ConversationLog, Entry
from hub.conversations.pipeline import Opening
from hub.errors import Forbidden
from hub.models import AuthorType, Direction, Inbound, Kind, Message, Status, utcnow
from storage.repositories import campaigns as campaign_rows
from storage.repositories import conversations as rows


class WebChatThreading:
    def __init__(self, log: ConversationLog) -> None:
        self._log = log

    async def locate(
        self, conn: AsyncConnection, inbound: Inbound, contact_id: int
    ) -> int | Opening:
        visitor_id = inbound.visitor_id
        assert visitor_id is not None  # the pipeline resolved the visitor
        named = inbound.conversation_id
        if named is not None:
            if await rows.column(conn, named, "visitor_id") != visitor_id:
                raise Forbidden("that conversation is not yours")
            return named
        latest = await rows.latest_of_visitor(conn, visitor_id)
        if inbound.campaign_id is not None and (
            latest is None or await rows.column(conn, latest, "status") == Status.RESOLVED.value
        ):
            if await self._campaign(conn, inbound) is not None:
                return Opening(visitor_id=visitor_id, campaign_id=inbound.campaign_id)
        if latest is not None:
            return latest
        return Opening(visitor_id=visitor_id)

    async def opened(
        self, conn: AsyncConnection, inbound: Inbound, conversation_id: int, opening: Opening
    ) -> list[Message]:
        """A campaign's reply: the campaign's message opens the conversation, and
        its delivery to this visitor counts as replied."""
        if opening.campaign_id is None:
            return []
        campaign = await self._campaign(conn, inbound)
        assert campaign is not None  # found by `locate` in this transaction
        opener = await self._log.append(
            conn,
            conversation_id,
            Entry(
                Direction.OUT,
                Kind.TEXT,
                AuthorType.CAMPAIGN,
                campaign.message,
                author_id=campaign.id,
                author_name=campaign.sender_name,
            ),
        )
        assert inbound.visitor_id is not None
        await campaign_rows.record_reply(
            conn, campaign.id, inbound.visitor_id, conversation_id, utcnow()
        )
        return [opener]

    async def _campaign(self, conn: AsyncConnection, inbound: Inbound) -> sa.Row | None:
        """The campaign this message answers, if it was shown to this visitor and
        is not answered yet."""
        if inbound.campaign_id is None or inbound.visitor_id is None:
            return None
        return await campaign_rows.unanswered(
            conn, inbound.campaign_id, inbound.inbox_id, inbound.visitor_id
        )
