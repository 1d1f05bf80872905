"""The team: admins invite, edit, deactivate, reactivate, delete and reset the
passwords of agents; every agent edits their own profile.

Rules kept here, whoever calls:
- the last active admin can never be deactivated, demoted or deleted;
- an agent with history (messages, notes, logged calls, activity, a conversation
  held) is deactivated, never deleted, so the history keeps their name;
- ending sessions (deactivation, a password reset or change) is told on the bus
  after commit, so that the agent's console sockets on every node close at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.agents.avatars import Avatar, check_avatar
from hub.agents.invitations import Invitation, InvitationLinks, new_nonce
from hub.agents.service import AgentService, agent_of, check_password, session_id
from hub.conversations.service import ConversationService
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.events import topics
from hub.events.bus import EventBus
from hub.events.unit_of_work import store_write
from hub.models import Agent, AuthorType, Availability, Role, Status, utcnow
from hub.security import hash_password, verify_password
from hub.text import clean_email, clean_text
from storage.db import Database
from storage.repositories import agents as agent_rows

LAST_ADMIN = "The last active admin cannot be {}: make another agent an admin first."


class AgentAccounts:
    def __init__(
        self,
        db: Database,
        agents: AgentService,
        conversations: ConversationService,
        bus: EventBus,
        invitations: InvitationLinks,
    ) -> None:
        self._db = db
        self._agents = agents
        self._conversations = conversations
        self._bus = bus
        self.invitations = invitations

    # ---- admins -------------------------------------------------------------------

    async def invite(
        self, actor: Agent, email: str, name: str, role: Role = Role.AGENT
    ) -> tuple[Agent, str]:
        """A new invited agent (or a fresh link for one not yet joined) and the
        invitation token; the link of an earlier invitation stops working."""
        _admin(actor)
        address = _email(email)
        display = clean_text(name, 100, "name")
        nonce = new_nonce()
        async with store_write(self._db) as conn:
            row = await agent_rows.by_email(conn, address)
            if row is not None and row.invite_nonce is None:
                raise InvalidInput(f"an agent with email {address} already exists")
            values = {"name": display, "role": Role(role).value, "invite_nonce": nonce}
            if row is None:
                agent_id = await agent_rows.insert(
                    conn,
                    {**values, "email": address, "password_hash": "", "created_at": utcnow()},
                )
            else:
                agent_id = row.id
                await agent_rows.update(conn, agent_id, values)
            agent = agent_of(await _row(conn, agent_id))
        return agent, self.invitations.token(Invitation(agent_id, nonce))

    async def invited(self, token: str) -> Agent:
        """The agent an invitation link is for, while it can still be used."""
        invitation = self.invitations.read(token)
        async with self._db.read() as conn:
            row = await agent_rows.row(conn, invitation.agent_id)
        if row is None or row.invite_nonce != invitation.nonce or row.deactivated_at is not None:
            raise InvalidInput("This invitation has already been used or was withdrawn.")
        return agent_of(row)

    async def accept(self, token: str, password: str) -> Agent:
        """Set the invitee's password from the link; the link then works no more."""
        invitation = self.invitations.read(token)
        check_password(password)
        async with store_write(self._db) as conn:
            taken = await agent_rows.take_invitation(
                conn,
                invitation.agent_id,
                invitation.nonce,
                {"password_hash": hash_password(password)},
            )
            if not taken:
                raise InvalidInput("This invitation has already been used or was withdrawn.")
            return agent_of(await _row(conn, invitation.agent_id))

    async def update(
        self, actor: Agent, agent_id: int, *, name: str, email: str, role: Role
    ) -> Agent:
        _admin(actor)
        address = _email(email)
        display = clean_text(name, 100, "name")
        role = Role(role)
        async with store_write(self._db) as conn:
            row = await _row(conn, agent_id)
            if row.role == Role.ADMIN.value and role is not Role.ADMIN:
                await _not_last_admin(conn, row, "demoted")
            other = await agent_rows.by_email(conn, address)
            if other is not None and other.id != agent_id:
                raise InvalidInput(f"an agent with email {address} already exists", "email")
            await agent_rows.update(
                conn, agent_id, {"name": display, "email": address, "role": role.value}
            )
            return agent_of(await _row(conn, agent_id))

    async def deactivate(self, actor: Agent, agent_id: int) -> Agent:
        """No more logins; sessions and console sockets end now; the agent's open
        conversations go back to the unassigned queue."""
        _admin(actor)
        async with store_write(self._db) as conn:
            row = await _row(conn, agent_id)
            if row.deactivated_at is not None:
                return agent_of(row)
            await _not_last_admin(conn, row, "deactivated")
            await agent_rows.update(conn, agent_id, {"deactivated_at": utcnow()})
            await agent_rows.delete_sessions_of(conn, agent_id)
            held = await agent_rows.assigned_not_in(conn, agent_id, [Status.RESOLVED.value])
            agent = agent_of(await _row(conn, agent_id))
        await self._sessions_ended(agent_id, "deactivated")
        for conversation_id in held:
            await self._conversations.assign(actor, conversation_id, None)
        return agent

    async def reactivate(self, actor: Agent, agent_id: int) -> Agent:
        _admin(actor)
        async with store_write(self._db) as conn:
            await _row(conn, agent_id)
            await agent_rows.update(conn, agent_id, {"deactivated_at": None})
            return agent_of(await _row(conn, agent_id))

    async def delete(self, actor: Agent, agent_id: int) -> None:
        """Remove an agent who has no history (else refused: deactivate them)."""
        _admin(actor)
        async with store_write(self._db) as conn:
            row = await _row(conn, agent_id)
            await _not_last_admin(conn, row, "deleted")
            if await agent_rows.has_history(conn, agent_id, AuthorType.AGENT.value, row.name):
                raise InvalidInput(
                    f"{row.name} has history (messages, notes, calls or conversations), "
                    "so they cannot be deleted. Deactivate them instead: they can no longer "
                    "log in and their history keeps their name."
                )
            await agent_rows.delete(conn, agent_id)
        await self._sessions_ended(agent_id, "deleted")

    async def reset_password(self, actor: Agent, agent_id: int, password: str) -> None:
        """An admin sets another agent's password; all that agent's sessions end."""
        _admin(actor)
        check_password(password)
        async with store_write(self._db) as conn:
            await _row(conn, agent_id)
            await agent_rows.update(conn, agent_id, {"password_hash": hash_password(password)})
            await agent_rows.delete_sessions_of(conn, agent_id)
        await self._sessions_ended(agent_id, "password_reset")

    # ---- every agent, for themself ------------------------------------------------

    async def change_password(
        self, agent: Agent, current: str, new: str, session_token: str
    ) -> None:
        """Needs the current password; every other session of the agent ends."""
        async with self._db.read() as conn:
            row = await _row(conn, agent.id)
        if not verify_password(row.password_hash, current):
            raise InvalidInput("The current password is wrong.", "current_password")
        check_password(new)
        async with store_write(self._db) as conn:
            await agent_rows.update(conn, agent.id, {"password_hash": hash_password(new)})
            await agent_rows.delete_sessions_except(conn, agent.id, session_id(session_token))
        await self._sessions_ended(agent.id, "password_changed")

    async def set_profile(self, agent: Agent, name: str) -> Agent:
        display = clean_text(name, 100, "name")
        async with store_write(self._db) as conn:
            await agent_rows.update(conn, agent.id, {"name": display})
            return agent_of(await _row(conn, agent.id))

    async def set_notifications(self, agent: Agent, *, sound: bool, browser: bool) -> Agent:
        async with store_write(self._db) as conn:
            await agent_rows.update(
                conn, agent.id, {"notify_sound": sound, "notify_browser": browser}
            )
            return agent_of(await _row(conn, agent.id))

    async def set_avatar(self, agent: Agent, data: bytes | None) -> Agent:
        """Store the agent's picture (checked by its bytes), or remove it with None."""
        avatar = check_avatar(data) if data is not None else None
        async with store_write(self._db) as conn:
            await agent_rows.set_avatar(
                conn,
                agent.id,
                avatar.content_type if avatar else "",
                avatar.data if avatar else None,
            )
            await agent_rows.update(conn, agent.id, {"avatar_at": utcnow() if avatar else None})
            return agent_of(await _row(conn, agent.id))

    async def avatar(self, agent_id: int) -> Avatar:
        async with self._db.read() as conn:
            row = await agent_rows.avatar(conn, agent_id)
        if row is None:
            raise NotFound("no such picture")
        return Avatar(row.content_type, bytes(row.data))

    async def set_availability(self, agent: Agent, availability: Availability) -> Agent:
        """Online, busy or offline, as the agent says; colleagues are told."""
        availability = Availability(availability)
        async with store_write(self._db) as conn:
            await agent_rows.update(conn, agent.id, {"availability": availability.value})
            updated = agent_of(await _row(conn, agent.id))
        await self._bus.publish(
            topics.AGENTS,
            {
                "type": "agent_availability",
                "agent_id": agent.id,
                "availability": availability.value,
            },
        )
        return updated

    async def _sessions_ended(self, agent_id: int, reason: str) -> None:
        await self._bus.publish(
            topics.agent_sessions_channel(agent_id), {"type": "sessions_ended", "reason": reason}
        )


def _admin(actor: Agent) -> None:
    if not actor.is_admin or not actor.active:
        raise Forbidden("Only admins can manage agents.")


def _email(email: str) -> str:
    address = clean_email(email)
    if address is None:
        raise InvalidInput("a valid email address is required", "email")
    return address


async def _row(conn: AsyncConnection, agent_id: int) -> sa.Row:
    row = await agent_rows.row(conn, agent_id)
    if row is None:
        raise NotFound(f"no agent {agent_id}")
    return row


async def _not_last_admin(conn: AsyncConnection, row: sa.Row, what: str) -> None:
    active_admin = (
        row.role == Role.ADMIN.value and row.deactivated_at is None and row.invite_nonce is None
    )
    if active_admin and await agent_rows.count_active_with_role(conn, Role.ADMIN.value) <= 1:
        raise InvalidInput(LAST_ADMIN.format(what))
