"""Two-factor login: agents' TOTP secrets, recovery codes, and the hub-wide settings
that admins change (hub/agents/two_factor.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    agent_recovery_codes,
    agent_sessions,
    agent_two_factor,
    agents,
    hub_settings,
)


async def of_agent(conn: AsyncConnection, agent_id: int) -> sa.Row | None:
    query = sa.select(agent_two_factor).where(agent_two_factor.c.agent_id == agent_id)
    return (await conn.execute(query)).first()


async def enabled_agent_ids(conn: AsyncConnection) -> set[int]:
    rows = await conn.scalars(
        sa.select(agent_two_factor.c.agent_id).where(agent_two_factor.c.enabled_at.is_not(None))
    )
    return set(rows)


async def put_pending(conn: AsyncConnection, agent_id: int, secret: str, at: datetime) -> None:
    """A new secret awaiting its confirming code (in place of an unconfirmed one)."""
    await conn.execute(
        agent_two_factor.delete()
        .where(agent_two_factor.c.agent_id == agent_id)
        .where(agent_two_factor.c.enabled_at.is_(None))
    )
    await conn.execute(
        agent_two_factor.insert().values(
            agent_id=agent_id, secret=secret, enabled_at=None, last_step=0, created_at=at
        )
    )


async def enable(conn: AsyncConnection, agent_id: int, at: datetime, step: int) -> bool:
    """Turn the pending secret on, its confirming code's step used; whether it was pending."""
    done = await conn.execute(
        agent_two_factor.update()
        .where(agent_two_factor.c.agent_id == agent_id)
        .where(agent_two_factor.c.enabled_at.is_(None))
        .values(enabled_at=at, last_step=step)
    )
    return bool(done.rowcount)


async def use_step(conn: AsyncConnection, agent_id: int, step: int) -> bool:
    """Record that a code of time step `step` was accepted, unless one of that step or
    a later one already was (a replay); whether it was recorded."""
    done = await conn.execute(
        agent_two_factor.update()
        .where(agent_two_factor.c.agent_id == agent_id)
        .where(agent_two_factor.c.enabled_at.is_not(None))
        .where(agent_two_factor.c.last_step < step)
        .values(last_step=step)
    )
    return bool(done.rowcount)


async def remove(conn: AsyncConnection, agent_id: int) -> bool:
    """Two-factor off for the agent: the secret and the recovery codes go."""
    await conn.execute(
        agent_recovery_codes.delete().where(agent_recovery_codes.c.agent_id == agent_id)
    )
    done = await conn.execute(
        agent_two_factor.delete().where(agent_two_factor.c.agent_id == agent_id)
    )
    return bool(done.rowcount)


async def replace_recovery_codes(
    conn: AsyncConnection, agent_id: int, code_hashes: list[str]
) -> None:
    await conn.execute(
        agent_recovery_codes.delete().where(agent_recovery_codes.c.agent_id == agent_id)
    )
    await conn.execute(
        agent_recovery_codes.insert(),
        [{"agent_id": agent_id, "code_hash": code_hash} for code_hash in code_hashes],
    )


async def use_recovery_code(
    conn: AsyncConnection, agent_id: int, code_hash: str, at: datetime
) -> bool:
    """Mark an unused recovery code used; whether there was one."""
    done = await conn.execute(
        agent_recovery_codes.update()
        .where(agent_recovery_codes.c.agent_id == agent_id)
        .where(agent_recovery_codes.c.code_hash == code_hash)
        .where(agent_recovery_codes.c.used_at.is_(None))
        .values(used_at=at)
    )
    return bool(done.rowcount)


async def unused_recovery_codes(conn: AsyncConnection, agent_id: int) -> int:
    count = await conn.scalar(
        sa.select(sa.func.count())
        .where(agent_recovery_codes.c.agent_id == agent_id)
        .where(agent_recovery_codes.c.used_at.is_(None))
    )
    return int(count or 0)


async def end_sessions_without_two_factor(conn: AsyncConnection) -> int:
    """End the sessions of every agent who has not turned two-factor on; how many."""
    enabled = sa.select(agent_two_factor.c.agent_id).where(
        agent_two_factor.c.enabled_at.is_not(None)
    )
    done = await conn.execute(
        agent_sessions.delete().where(agent_sessions.c.agent_id.not_in(enabled))
    )
    return done.rowcount or 0


async def agent_id_by_email(conn: AsyncConnection, email: str) -> int | None:
    agent_id: int | None = await conn.scalar(sa.select(agents.c.id).where(agents.c.email == email))
    return agent_id


# ---- hub-wide settings ----------------------------------------------------------


async def setting(conn: AsyncConnection, name: str) -> Any:
    """The stored value of setting `name`; None if it was never set."""
    return await conn.scalar(sa.select(hub_settings.c.value).where(hub_settings.c.name == name))


async def put_setting(
    conn: AsyncConnection, name: str, value: Any, at: datetime, by: int | None
) -> None:
    done = await conn.execute(
        hub_settings.update()
        .where(hub_settings.c.name == name)
        .values(value=value, updated_at=at, updated_by=by)
    )
    if not done.rowcount:
        await conn.execute(
            hub_settings.insert().values(name=name, value=value, updated_at=at, updated_by=by)
        )
