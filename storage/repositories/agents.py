"""Agents and their sessions (hub/agents/service.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    agent_avatars,
    agent_reads,
    agent_sessions,
    agents,
    calls,
    conversations,
    messages,
)


async def by_email(conn: AsyncConnection, email: str) -> sa.Row | None:
    return (await conn.execute(sa.select(agents).where(agents.c.email == email))).first()


async def row(conn: AsyncConnection, agent_id: int) -> sa.Row | None:
    return (await conn.execute(sa.select(agents).where(agents.c.id == agent_id))).first()


async def all_by_name(conn: AsyncConnection) -> list[sa.Row]:
    return list(await conn.execute(sa.select(agents).order_by(agents.c.name)))


async def count_with_role(conn: AsyncConnection, role: str) -> int:
    count = await conn.scalar(sa.select(sa.func.count()).where(agents.c.role == role))
    return count or 0


async def count_active_with_role(conn: AsyncConnection, role: str) -> int:
    """Agents with `role` who can log in (not deactivated, not still invited);
    their rows are locked (on PostgreSQL) so that two demotions cannot both pass."""
    ids = await conn.execute(
        sa.select(agents.c.id)
        .where(agents.c.role == role)
        .where(agents.c.deactivated_at.is_(None))
        .where(agents.c.invite_nonce.is_(None))
        .with_for_update()
    )
    return len(list(ids))


async def update(conn: AsyncConnection, agent_id: int, values: dict[str, Any]) -> bool:
    result = await conn.execute(agents.update().where(agents.c.id == agent_id).values(values))
    return bool(result.rowcount)


async def take_invitation(
    conn: AsyncConnection, agent_id: int, nonce: str, values: dict[str, Any]
) -> bool:
    """Set `values` on the invited agent if the invitation's nonce is still theirs
    (it is cleared: the link works once)."""
    result = await conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .where(agents.c.invite_nonce == nonce)
        .where(agents.c.deactivated_at.is_(None))
        .values({**values, "invite_nonce": None})
    )
    return bool(result.rowcount)


async def has_history(conn: AsyncConnection, agent_id: int, agent_author: str, name: str) -> bool:
    """Whether the agent wrote anything (messages, notes, activity), holds a
    conversation, or answered a call (calls name who answered, as text);
    `agent_author` is the author type of agents."""
    wrote = sa.exists().where(
        messages.c.author_type == agent_author, messages.c.author_id == agent_id
    )
    holds = sa.exists().where(conversations.c.assignee_id == agent_id)
    answered = sa.exists().where(calls.c.answered_by == name)
    return bool(await conn.scalar(sa.select(sa.or_(wrote, holds, answered))))


async def assigned_not_in(conn: AsyncConnection, agent_id: int, statuses: list[str]) -> list[int]:
    """Ids of the conversations assigned to the agent whose status is not one of `statuses`."""
    result = await conn.execute(
        sa.select(conversations.c.id)
        .where(conversations.c.assignee_id == agent_id)
        .where(conversations.c.status.not_in(statuses))
        .order_by(conversations.c.id)
    )
    return list(result.scalars())


async def delete(conn: AsyncConnection, agent_id: int) -> bool:
    """Forget the agent and what only they had (sessions, reads, avatar)."""
    for table in (agent_sessions, agent_reads, agent_avatars):
        await conn.execute(table.delete().where(table.c.agent_id == agent_id))
    result = await conn.execute(agents.delete().where(agents.c.id == agent_id))
    return bool(result.rowcount)


async def avatar(conn: AsyncConnection, agent_id: int) -> sa.Row | None:
    return (
        await conn.execute(sa.select(agent_avatars).where(agent_avatars.c.agent_id == agent_id))
    ).first()


async def set_avatar(
    conn: AsyncConnection, agent_id: int, content_type: str, data: bytes | None
) -> None:
    """Store the agent's picture (replacing any), or remove it with `data` None."""
    await conn.execute(agent_avatars.delete().where(agent_avatars.c.agent_id == agent_id))
    if data is not None:
        await conn.execute(
            agent_avatars.insert().values(agent_id=agent_id, content_type=content_type, data=data)
        )


async def delete_sessions_except(conn: AsyncConnection, agent_id: int, session_id: str) -> None:
    await conn.execute(
        agent_sessions.delete()
        .where(agent_sessions.c.agent_id == agent_id)
        .where(agent_sessions.c.id != session_id)
    )


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    agent_id: int = await conn.scalar(agents.insert().values(values).returning(agents.c.id))
    return agent_id


async def update_by_email(conn: AsyncConnection, email: str, values: dict[str, Any]) -> int | None:
    """Set `values` on the agent with this address; their id, None if there is none."""
    agent_id: int | None = await conn.scalar(
        agents.update().where(agents.c.email == email).values(values).returning(agents.c.id)
    )
    return agent_id


async def insert_session(
    conn: AsyncConnection, session_id: str, agent_id: int, at: datetime, until: datetime
) -> None:
    await conn.execute(
        agent_sessions.insert().values(
            id=session_id, agent_id=agent_id, created_at=at, expires_at=until
        )
    )


async def of_session(conn: AsyncConnection, session_id: str, now: datetime) -> sa.Row | None:
    """The agent of a session that has not expired by `now`."""
    result = await conn.execute(
        sa.select(agents)
        .join(agent_sessions, agent_sessions.c.agent_id == agents.c.id)
        .where(agent_sessions.c.id == session_id)
        .where(agent_sessions.c.expires_at > now)
        .where(agents.c.deactivated_at.is_(None))
    )
    return result.first()


async def delete_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(agent_sessions.delete().where(agent_sessions.c.id == session_id))


async def delete_sessions_of(conn: AsyncConnection, agent_id: int) -> None:
    await conn.execute(agent_sessions.delete().where(agent_sessions.c.agent_id == agent_id))


async def delete_sessions_expired_by(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(agent_sessions.delete().where(agent_sessions.c.expires_at <= now))
    return result.rowcount or 0


async def count_failed_login(
    conn: AsyncConnection, agent_id: int, at: datetime, address: str
) -> None:
    """One more wrong password for the agent, the latest at `at` from `address`."""
    await conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .values(
            failed_logins=agents.c.failed_logins + 1,
            last_failed_login_at=at,
            last_failed_login_from=address,
        )
    )


async def failed_logins_since(conn: AsyncConnection, email: str, since: datetime) -> int:
    """The account's failed-login count if its latest failure is after `since`, else 0."""
    count = await conn.scalar(
        sa.select(agents.c.failed_logins)
        .where(agents.c.email == email)
        .where(agents.c.last_failed_login_at > since)
    )
    return int(count or 0)


async def take_failed_logins(conn: AsyncConnection, agent_id: int) -> sa.Row | None:
    """The agent's failed-login count and latest attempt, then set back to none."""
    row = (
        await conn.execute(
            sa.select(
                agents.c.failed_logins,
                agents.c.last_failed_login_at,
                agents.c.last_failed_login_from,
            )
            .where(agents.c.id == agent_id)
            .with_for_update()
        )
    ).first()
    if row is not None and row.failed_logins:
        await conn.execute(
            agents.update()
            .where(agents.c.id == agent_id)
            .values(failed_logins=0, last_failed_login_at=None, last_failed_login_from=None)
        )
    return row
