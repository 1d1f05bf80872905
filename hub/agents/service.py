"""Agents: accounts, roles and authentication."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from hub.errors import InvalidInput
from hub.events.unit_of_work import store_write
from hub.models import Agent, Role, utcnow
from hub.security import DUMMY_HASH, MIN_PASSWORD_LENGTH, hash_password, verify_password
from hub.text import clean_email, clean_text
from storage.db import Database
from storage.tables import agent_sessions, agents

# An agent logs in again after a working day and a half.
SESSION_LIFETIME = timedelta(hours=36)


def _agent(row: sa.Row) -> Agent:
    return Agent(id=row.id, email=row.email, name=row.name, role=Role(row.role))


class AgentService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, email: str, name: str, password: str, role: Role = Role.AGENT) -> Agent:
        address = clean_email(email)
        if address is None:
            raise InvalidInput("email is required")
        display = clean_text(name, 100, "name")
        _check_password(password)
        async with store_write(self._db) as conn:
            if await conn.scalar(sa.select(agents.c.id).where(agents.c.email == address)):
                raise InvalidInput(f"an agent with email {address} already exists")
            agent_id = await conn.scalar(
                agents.insert()
                .values(
                    email=address,
                    name=display,
                    password_hash=hash_password(password),
                    role=Role(role).value,
                    created_at=utcnow(),
                )
                .returning(agents.c.id)
            )
        return Agent(id=agent_id, email=address, name=display, role=Role(role))

    async def set_password(self, email: str, password: str) -> None:
        _check_password(password)
        async with store_write(self._db) as conn:
            result = await conn.execute(
                agents.update()
                .where(agents.c.email == email.strip().lower())
                .values(password_hash=hash_password(password))
            )
            if result.rowcount == 0:
                raise InvalidInput(f"no agent with email {email}")
            # A new password ends every session opened with the old one.
            agent_id = await conn.scalar(
                sa.select(agents.c.id).where(agents.c.email == email.strip().lower())
            )
            await conn.execute(agent_sessions.delete().where(agent_sessions.c.agent_id == agent_id))

    async def authenticate(self, email: str, password: str) -> Agent | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(sa.select(agents).where(agents.c.email == email.strip().lower()))
            ).first()
        if row is None:
            verify_password(DUMMY_HASH, password)
            return None
        return _agent(row) if verify_password(row.password_hash, password) else None

    async def get(self, agent_id: int) -> Agent | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(agents).where(agents.c.id == agent_id))).first()
        return _agent(row) if row else None

    async def list(self) -> list[Agent]:
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(agents).order_by(agents.c.name))).all()
        return [_agent(row) for row in rows]

    async def count_admins(self) -> int:
        async with self._db.read() as conn:
            return (
                await conn.scalar(
                    sa.select(sa.func.count()).where(agents.c.role == Role.ADMIN.value)
                )
                or 0
            )

    # ---- sessions ------------------------------------------------------------------

    async def open_session(self, agent: Agent) -> str:
        """A new session token for the agent's cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with store_write(self._db) as conn:
            await conn.execute(
                agent_sessions.insert().values(
                    id=_session_id(token),
                    agent_id=agent.id,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return token

    async def session_agent(self, token: str) -> Agent | None:
        """The agent of a live session, or None if it ended, expired or never existed."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(agents)
                    .join(agent_sessions, agent_sessions.c.agent_id == agents.c.id)
                    .where(agent_sessions.c.id == _session_id(token))
                    .where(agent_sessions.c.expires_at > utcnow())
                )
            ).first()
        return _agent(row) if row else None

    async def close_session(self, token: str) -> None:
        async with store_write(self._db) as conn:
            await conn.execute(
                agent_sessions.delete().where(agent_sessions.c.id == _session_id(token))
            )

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Forget sessions past their end (a worker job); how many."""
        async with store_write(self._db) as conn:
            result = await conn.execute(
                agent_sessions.delete().where(agent_sessions.c.expires_at <= now)
            )
        return result.rowcount


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("password must be at most 1024 characters")
