"""Messages with their author's name: every read of `messages` (the one append
writes them through conversations.py). `Messages` is built once by the hub
with the values it stores for author types and the kinds a visitor sees."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import agents, campaigns, contacts, messages

_authors = agents.alias("author")
_contact_authors = contacts.alias("contact_author")  # an email's sender


def message_query(agent: str, campaign: str, contact: str) -> sa.Select:
    """A message's row with its author's name; the arguments are the author types
    whose id names an agent, a campaign and a contact."""
    author_name = sa.func.coalesce(
        _authors.c.name, campaigns.c.sender_name, _contact_authors.c.name, _contact_authors.c.email
    )
    return sa.select(messages, author_name.label("author_name")).select_from(
        messages.outerjoin(
            _authors,
            sa.and_(messages.c.author_type == agent, _authors.c.id == messages.c.author_id),
        )
        .outerjoin(
            campaigns,
            sa.and_(messages.c.author_type == campaign, campaigns.c.id == messages.c.author_id),
        )
        .outerjoin(
            _contact_authors,
            sa.and_(
                messages.c.author_type == contact, _contact_authors.c.id == messages.c.author_id
            ),
        )
    )


class Messages:
    def __init__(
        self, agent: str, campaign: str, contact: str, public_kinds: Sequence[str]
    ) -> None:
        self.query = message_query(agent, campaign, contact)
        self.public_kinds = tuple(public_kinds)
        # A resume's read, prepared once: many arrive together after a restart.
        self._public_after = (
            self.query.where(messages.c.conversation_id == sa.bindparam("b_conversation_id"))
            .where(messages.c.seq > sa.bindparam("b_after_seq"))
            .where(messages.c.kind.in_(self.public_kinds))
            .order_by(messages.c.seq)
            .limit(sa.bindparam("b_limit", type_=sa.Integer))
        )

    async def by_client_id(
        self, conn: AsyncConnection, conversation_id: int, client_id: str
    ) -> sa.Row | None:
        query = self.query.where(messages.c.conversation_id == conversation_id).where(
            messages.c.client_id == client_id
        )
        return (await conn.execute(query)).first()

    async def after(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        after_seq: int,
        limit: int,
        public_only: bool = False,
    ) -> list[sa.Row]:
        """Messages after `after_seq`, oldest first."""
        if public_only:
            found = await conn.execute(
                self._public_after,
                {"b_conversation_id": conversation_id, "b_after_seq": after_seq, "b_limit": limit},
            )
            return list(found)
        query = (
            self.query.where(messages.c.conversation_id == conversation_id)
            .where(messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return list(await conn.execute(query))

    async def newest(self, conn: AsyncConnection, conversation_id: int, limit: int) -> list[sa.Row]:
        """The newest `limit` messages, newest first."""
        query = (
            self.query.where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        return list(await conn.execute(query))
