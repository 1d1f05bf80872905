"""Teams, their members, and inbox members: `teams`, `team_members`, `inbox_members`
(hub/agents/access.py decides from them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    calls,
    campaigns,
    conversations,
    email_attachments,
    email_messages,
    inbox_members,
    inboxes,
    team_members,
    teams,
    visitors,
)


async def inboxes_of_agent(conn: AsyncConnection, agent_id: int) -> set[int]:
    """Inboxes the agent works in: open to everyone, or naming them or one of their teams."""
    my_teams = sa.select(team_members.c.team_id).where(team_members.c.agent_id == agent_id)
    member = sa.select(inbox_members.c.inbox_id).where(
        sa.or_(inbox_members.c.agent_id == agent_id, inbox_members.c.team_id.in_(my_teams))
    )
    query = sa.select(inboxes.c.id).where(
        sa.or_(inboxes.c.members_only == sa.false(), inboxes.c.id.in_(member))
    )
    return set((await conn.scalars(query)).all())


async def all_inbox_ids(conn: AsyncConnection) -> set[int]:
    return set((await conn.scalars(sa.select(inboxes.c.id))).all())


# ---- teams ------------------------------------------------------------------------


async def insert_team(conn: AsyncConnection, name: str, now: datetime) -> int:
    team_id: int = await conn.scalar(
        teams.insert().values(name=name, created_at=now).returning(teams.c.id)
    )
    return team_id


async def team_named(conn: AsyncConnection, name: str) -> int | None:
    query = sa.select(teams.c.id).where(sa.func.lower(teams.c.name) == name.lower())
    found: int | None = await conn.scalar(query)
    return found


async def team_rows(conn: AsyncConnection) -> list[sa.Row]:
    return list(await conn.execute(sa.select(teams).order_by(sa.func.lower(teams.c.name))))


async def team_row(conn: AsyncConnection, team_id: int) -> sa.Row | None:
    return (await conn.execute(sa.select(teams).where(teams.c.id == team_id))).first()


async def rename_team(conn: AsyncConnection, team_id: int, name: str) -> None:
    await conn.execute(teams.update().where(teams.c.id == team_id).values(name=name))


async def delete_team(conn: AsyncConnection, team_id: int) -> None:
    await conn.execute(inbox_members.delete().where(inbox_members.c.team_id == team_id))
    await conn.execute(team_members.delete().where(team_members.c.team_id == team_id))
    await conn.execute(teams.delete().where(teams.c.id == team_id))


async def team_member_pairs(conn: AsyncConnection) -> list[tuple[int, int]]:
    """(team id, agent id) of every membership."""
    rows = await conn.execute(sa.select(team_members.c.team_id, team_members.c.agent_id))
    return [(row.team_id, row.agent_id) for row in rows]


async def set_team_members(conn: AsyncConnection, team_id: int, agent_ids: Iterable[int]) -> None:
    await conn.execute(team_members.delete().where(team_members.c.team_id == team_id))
    values = [{"team_id": team_id, "agent_id": agent_id} for agent_id in sorted(set(agent_ids))]
    if values:
        await conn.execute(team_members.insert(), values)


# ---- inbox members ------------------------------------------------------------------


async def inbox_member_rows(conn: AsyncConnection, inbox_id: int) -> list[sa.Row]:
    query = sa.select(inbox_members.c.agent_id, inbox_members.c.team_id).where(
        inbox_members.c.inbox_id == inbox_id
    )
    return list(await conn.execute(query))


async def set_inbox_members(
    conn: AsyncConnection,
    inbox_id: int,
    members_only: bool,
    agent_ids: Iterable[int],
    team_ids: Iterable[int],
) -> None:
    await conn.execute(
        inboxes.update().where(inboxes.c.id == inbox_id).values(members_only=members_only)
    )
    await conn.execute(inbox_members.delete().where(inbox_members.c.inbox_id == inbox_id))
    values = [
        {"inbox_id": inbox_id, "agent_id": agent_id, "team_id": None}
        for agent_id in sorted(set(agent_ids))
    ] + [
        {"inbox_id": inbox_id, "agent_id": None, "team_id": team_id}
        for team_id in sorted(set(team_ids))
    ]
    if values:
        await conn.execute(inbox_members.insert(), values)


# ---- what a console path names, by inbox ---------------------------------------------


def _conversation_inbox(conversation_id: Any) -> sa.Select:
    return sa.select(conversations.c.inbox_id).where(conversations.c.id == conversation_id)


def _email_conversation(email_id: Any) -> sa.Select:
    return sa.select(email_messages.c.conversation_id).where(email_messages.c.id == email_id)


_ONE_INBOX: dict[str, Callable[[Any], sa.Select]] = {
    "inbox": lambda inbox_id: sa.select(inboxes.c.id).where(inboxes.c.id == inbox_id),
    "conversation": _conversation_inbox,
    "email": lambda email_id: sa.select(conversations.c.inbox_id).where(
        conversations.c.id == _email_conversation(email_id).scalar_subquery()
    ),
    "attachment": lambda attachment_id: sa.select(conversations.c.inbox_id).where(
        conversations.c.id
        == sa.select(email_messages.c.conversation_id)
        .where(
            email_messages.c.id
            == sa.select(email_attachments.c.email_message_id)
            .where(email_attachments.c.id == attachment_id)
            .scalar_subquery()
        )
        .scalar_subquery()
    ),
    "call": lambda call_id: sa.select(calls.c.inbox_id).where(calls.c.id == call_id),
    "visitor": lambda visitor_id: sa.select(visitors.c.inbox_id).where(visitors.c.id == visitor_id),
    "campaign": lambda campaign_id: sa.select(campaigns.c.inbox_id).where(
        campaigns.c.id == campaign_id
    ),
}

KINDS = (*_ONE_INBOX, "contact")


async def inboxes_of(conn: AsyncConnection, kind: str, key: int | str) -> set[int]:
    """The inboxes the thing of `kind` (see KINDS) with id `key` is in; empty if
    there is no such thing. A contact is in every inbox it has a conversation,
    a call or a visitor in."""
    if kind == "contact":
        query = sa.union(
            sa.select(conversations.c.inbox_id).where(conversations.c.contact_id == key),
            sa.select(calls.c.inbox_id).where(calls.c.contact_id == key),
            sa.select(visitors.c.inbox_id).where(visitors.c.contact_id == key),
        )
        return {row[0] for row in await conn.execute(query)}
    found = await conn.scalar(_ONE_INBOX[kind](key))
    return set() if found is None else {found}
