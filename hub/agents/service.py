"""Agents: accounts, roles and authentication."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hub.errors import Forbidden, InvalidInput
from hub.events.unit_of_work import store_write
from hub.models import Agent, Role, utcnow
from hub.records import record_of
from hub.security import DUMMY_HASH, MIN_PASSWORD_LENGTH, hash_password, verify_password
from hub.text import clean_email, clean_text
from storage.db import Database
from storage.repositories import agents as agent_rows

# An agent logs in again after a working day and a half.
SESSION_LIFETIME = timedelta(hours=36)


# Failed logins older than this no longer slow the account's logins down.
RECENT_FAILURES = timedelta(minutes=15)


@dataclass(frozen=True)
class FailedLogins:
    """Wrong passwords for an account since its last login, and the latest one."""

    count: int
    last_at: datetime
    last_from: str


class Deactivated(Forbidden):
    """The right password of a deactivated account: told only to whoever knows it."""

    code = "deactivated"


def agent_of(row: sa.Row) -> Agent:
    return record_of(
        Agent, row, active=row.deactivated_at is None, invited=row.invite_nonce is not None
    )


_agent = agent_of


class AgentService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, email: str, name: str, password: str, role: Role = Role.AGENT) -> Agent:
        address = clean_email(email)
        if address is None:
            raise InvalidInput("email is required")
        display = clean_text(name, 100, "name")
        check_password(password)
        async with store_write(self._db) as conn:
            if await agent_rows.by_email(conn, address) is not None:
                raise InvalidInput(f"an agent with email {address} already exists")
            agent_id = await agent_rows.insert(
                conn,
                {
                    "email": address,
                    "name": display,
                    "password_hash": hash_password(password),
                    "role": Role(role).value,
                    "created_at": utcnow(),
                },
            )
        return Agent(id=agent_id, email=address, name=display, role=Role(role))

    async def set_password(self, email: str, password: str) -> None:
        check_password(password)
        async with store_write(self._db) as conn:
            agent_id = await agent_rows.update_by_email(
                conn, email.strip().lower(), {"password_hash": hash_password(password)}
            )
            if agent_id is None:
                raise InvalidInput(f"no agent with email {email}")
            # A new password ends every session opened with the old one.
            await agent_rows.delete_sessions_of(conn, agent_id)

    async def authenticate(
        self, email: str, password: str, address: str | None = None
    ) -> Agent | None:
        """The agent if the password is theirs; with `address`, a wrong one is counted."""
        async with self._db.read() as conn:
            row = await agent_rows.by_email(conn, email.strip().lower())
        if row is None:
            verify_password(DUMMY_HASH, password)
            return None
        if verify_password(row.password_hash, password):
            if row.deactivated_at is not None:
                raise Deactivated(
                    "This account has been deactivated. Ask an admin to reactivate it."
                )
            return _agent(row)
        if address is not None:
            async with store_write(self._db) as conn:
                await agent_rows.count_failed_login(conn, row.id, utcnow(), address)
        return None

    async def recent_failed_logins(self, email: str) -> int:
        """Wrong passwords for this account since its last login, if the latest is recent."""
        async with self._db.read() as conn:
            return await agent_rows.failed_logins_since(
                conn, email.strip().lower(), utcnow() - RECENT_FAILURES
            )

    async def take_failed_logins(self, agent: Agent) -> FailedLogins | None:
        """The failed logins since the agent's last login (once: they are then cleared)."""
        async with store_write(self._db) as conn:
            row = await agent_rows.take_failed_logins(conn, agent.id)
        if row is None or not row.failed_logins or row.last_failed_login_at is None:
            return None
        last_at = row.last_failed_login_at
        if last_at.tzinfo is None:  # SQLite hands back naive UTC times
            last_at = last_at.replace(tzinfo=UTC)
        return FailedLogins(row.failed_logins, last_at, row.last_failed_login_from or "unknown")

    async def get(self, agent_id: int) -> Agent | None:
        async with self._db.read() as conn:
            row = await agent_rows.row(conn, agent_id)
        return _agent(row) if row else None

    async def list(self, *, everyone: bool = False) -> list[Agent]:
        """The agents who can work (active, invitation accepted), by name; with
        `everyone`, the deactivated and invited as well."""
        async with self._db.read() as conn:
            rows = await agent_rows.all_by_name(conn)
        agents = [_agent(row) for row in rows]
        return agents if everyone else [a for a in agents if a.active and not a.invited]

    async def count_admins(self) -> int:
        async with self._db.read() as conn:
            return await agent_rows.count_with_role(conn, Role.ADMIN.value)

    # ---- sessions ------------------------------------------------------------------

    async def open_session(self, agent: Agent) -> str:
        """A new session token for the agent's cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with store_write(self._db) as conn:
            await agent_rows.insert_session(
                conn, session_id(token), agent.id, now, now + SESSION_LIFETIME
            )
        return token

    async def session_agent(self, token: str) -> Agent | None:
        """The agent of a live session, or None if it ended, expired or never existed."""
        async with self._db.read() as conn:
            row = await agent_rows.of_session(conn, session_id(token), utcnow())
        return _agent(row) if row else None

    async def close_session(self, token: str) -> None:
        async with store_write(self._db) as conn:
            await agent_rows.delete_session(conn, session_id(token))

    async def delete_expired_sessions(self, now: datetime) -> int:
        """Forget sessions past their end (a worker job); how many."""
        async with store_write(self._db) as conn:
            return await agent_rows.delete_sessions_expired_by(conn, now)


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("password must be at most 1024 characters")
