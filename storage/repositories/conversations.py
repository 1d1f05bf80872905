"""Conversations: the queries behind the one append (hub/conversations/log.py)
and what the console and widget read of them (reads of messages: messages.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    agent_reads,
    agents,
    contacts,
    conversations,
    inboxes,
    messages,
)

ASSIGNEES = agents.alias("assignee")


def conversation_query() -> sa.Select:
    """A conversation's row with the names it shows (inbox, contact, assignee)."""
    return sa.select(
        conversations,
        inboxes.c.name.label("inbox_name"),
        inboxes.c.channel.label("channel"),
        contacts.c.name.label("contact_name"),
        contacts.c.email.label("contact_email"),
        contacts.c.phone.label("contact_phone"),
        ASSIGNEES.c.name.label("assignee_name"),
    ).select_from(
        conversations.join(inboxes, inboxes.c.id == conversations.c.inbox_id)
        .join(contacts, contacts.c.id == conversations.c.contact_id)
        .outerjoin(ASSIGNEES, ASSIGNEES.c.id == conversations.c.assignee_id)
    )


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    conversation_id: int = await conn.scalar(
        conversations.insert().values(values).returning(conversations.c.id)
    )
    return conversation_id


async def advance(
    conn: AsyncConnection, conversation_id: int, values: dict[str, Any], incoming: bool
) -> int | None:
    """Take the conversation's next seq and set `values`; the seq (None: no such row).
    `incoming` marks the seq as the customer's latest (what agents have unread).
    The row lock this takes serializes writers to one conversation on every engine."""
    next_seq = conversations.c.last_seq + 1
    if incoming:
        values = {**values, "last_in_seq": next_seq}
    seq: int | None = await conn.scalar(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .values(last_seq=next_seq, **values)
        .returning(conversations.c.last_seq)
    )
    return seq


async def update(conn: AsyncConnection, conversation_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        conversations.update().where(conversations.c.id == conversation_id).values(values)
    )


def first_reply(at: Any) -> dict[str, Any]:
    """The values that date the conversation's first reply (if not dated yet)."""
    return {"first_reply_at": sa.func.coalesce(conversations.c.first_reply_at, at)}


async def insert_message(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(messages.insert().values(values))


async def row(conn: AsyncConnection, conversation_id: int) -> sa.Row | None:
    query = conversation_query().where(conversations.c.id == conversation_id)
    return (await conn.execute(query)).first()


async def column(conn: AsyncConnection, conversation_id: int, name: str) -> Any:
    """One column of the conversation's row (None when there is no such row)."""
    return await conn.scalar(
        sa.select(conversations.c[name]).where(conversations.c.id == conversation_id)
    )


async def agent_name(conn: AsyncConnection, agent_id: int) -> str | None:
    name: str | None = await conn.scalar(sa.select(agents.c.name).where(agents.c.id == agent_id))
    return name


async def assignable_agent_name(conn: AsyncConnection, agent_id: int) -> str | None:
    """The agent's name if conversations may be given to them (active, joined)."""
    name: str | None = await conn.scalar(
        sa.select(agents.c.name)
        .where(agents.c.id == agent_id)
        .where(agents.c.deactivated_at.is_(None))
        .where(agents.c.invite_nonce.is_(None))
    )
    return name


async def latest_in_inbox(conn: AsyncConnection, inbox_id: int, contact_id: int) -> int | None:
    """The contact's newest conversation in this inbox."""
    found: int | None = await conn.scalar(
        sa.select(conversations.c.id)
        .where(conversations.c.inbox_id == inbox_id)
        .where(conversations.c.contact_id == contact_id)
        .order_by(conversations.c.id.desc())
        .limit(1)
    )
    return found


async def latest_of_visitor(
    conn: AsyncConnection, visitor_id: str, not_status: str | None = None
) -> int | None:
    query = sa.select(conversations.c.id).where(conversations.c.visitor_id == visitor_id)
    if not_status is not None:
        query = query.where(conversations.c.status != not_status)
    found: int | None = await conn.scalar(query.order_by(conversations.c.id.desc()).limit(1))
    return found


async def raise_agent_read(
    conn: AsyncConnection, is_sqlite: bool, agent_id: int, conversation_id: int, seq: int
) -> None:
    """Raise the agent's read mark (never lower it); one statement, race-free."""
    insert_ = sqlite_insert if is_sqlite else postgresql_insert
    statement = insert_(agent_reads).values(
        agent_id=agent_id, conversation_id=conversation_id, read_seq=seq
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[agent_reads.c.agent_id, agent_reads.c.conversation_id],
            set_={"read_seq": statement.excluded.read_seq},
            where=agent_reads.c.read_seq < statement.excluded.read_seq,
        )
    )


async def raise_visitor_read(conn: AsyncConnection, conversation_id: int, seq: int) -> None:
    await conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .where(conversations.c.visitor_read_seq < seq)
        .values(visitor_read_seq=seq)
    )


async def due_snoozes(conn: AsyncConnection, snoozed: str, now: Any) -> Sequence[int]:
    return (
        await conn.scalars(
            sa.select(conversations.c.id)
            .where(conversations.c.status == snoozed)
            .where(conversations.c.snoozed_until <= now)
        )
    ).all()


async def still_snoozed(
    conn: AsyncConnection, conversation_id: int, snoozed: str, now: Any
) -> bool:
    found = await conn.scalar(
        sa.select(conversations.c.id)
        .where(conversations.c.id == conversation_id)
        .where(conversations.c.status == snoozed)
        .where(conversations.c.snoozed_until <= now)
    )
    return found is not None


async def counts_by_status(
    conn: AsyncConnection, inbox_ids: Collection[int] | None = None
) -> dict[str, int]:
    """Conversations by status, in `inbox_ids` only unless it is None."""
    query = sa.select(conversations.c.status, sa.func.count()).group_by(conversations.c.status)
    if inbox_ids is not None:
        query = query.where(conversations.c.inbox_id.in_(sorted(inbox_ids)))
    return {found[0]: found[1] for found in await conn.execute(query)}


async def settle_call_backs(conn: AsyncConnection, contact_id: int) -> None:
    """None of the contact's conversations waits for a call back any more."""
    await conn.execute(
        conversations.update()
        .where(conversations.c.contact_id == contact_id)
        .where(conversations.c.call_back.is_(True))
        .values(call_back=False)
    )


_LATEST_OF_VISITORS = conversation_query().where(
    conversations.c.id.in_(
        sa.select(sa.func.max(conversations.c.id))
        .where(conversations.c.visitor_id.in_(sa.bindparam("b_visitor_ids", expanding=True)))
        .group_by(conversations.c.visitor_id)
    )
)


async def latest_rows_of_visitors(
    conn: AsyncConnection, visitor_ids: Sequence[str]
) -> dict[str, sa.Row]:
    """Each visitor's latest conversation, by visitor (one statement for them all)."""
    found = await conn.execute(_LATEST_OF_VISITORS, {"b_visitor_ids": sorted(set(visitor_ids))})
    return {r.visitor_id: r for r in found}


async def latest_row_of_visitor(conn: AsyncConnection, visitor_id: str) -> sa.Row | None:
    query = (
        conversation_query()
        .where(conversations.c.visitor_id == visitor_id)
        .order_by(conversations.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def rows_of_contact(conn: AsyncConnection, contact_id: int, limit: int) -> list[sa.Row]:
    """The contact's conversations in every inbox, newest activity first."""
    query = (
        conversation_query()
        .where(conversations.c.contact_id == contact_id)
        .order_by(conversations.c.last_activity_at.desc())
        .limit(limit)
    )
    return list(await conn.execute(query))


async def rows_for_agent(
    conn: AsyncConnection,
    agent_id: int,
    inbound: str,
    limit: int,
    *,
    status: str | None = None,
    assigned_to_agent: bool = False,
    unassigned: bool = False,
    inbox_ids: Collection[int] | None = None,
) -> list[sa.Row]:
    """Conversations newest activity first, each with `unread`: the messages of
    direction `inbound` after the agent's read mark; in `inbox_ids` only unless None."""
    read_seq = (
        sa.select(agent_reads.c.read_seq)
        .where(agent_reads.c.agent_id == agent_id)
        .where(agent_reads.c.conversation_id == conversations.c.id)
        .scalar_subquery()
    )
    unread = (
        sa.select(sa.func.count())
        .select_from(messages)
        .where(messages.c.conversation_id == conversations.c.id)
        .where(messages.c.direction == inbound)
        .where(messages.c.seq > sa.func.coalesce(read_seq, 0))
        .scalar_subquery()
        .label("unread")
    )
    query = conversation_query().add_columns(unread)
    if status is not None:
        query = query.where(conversations.c.status == status)
    if assigned_to_agent:
        query = query.where(conversations.c.assignee_id == agent_id)
    elif unassigned:
        query = query.where(conversations.c.assignee_id.is_(None))
    if inbox_ids is not None:
        query = query.where(conversations.c.inbox_id.in_(sorted(inbox_ids)))
    query = query.order_by(
        conversations.c.last_activity_at.desc(), conversations.c.id.desc()
    ).limit(limit)
    return list(await conn.execute(query))
