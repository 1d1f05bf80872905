"""Who sees what: the one decision every console route and socket frame asks.

- An admin reads and works in every inbox.
- A manager reads every inbox (reports, supervision) and works in the inboxes
  they belong to.
- An agent reads and works only in the inboxes they belong to.

An agent belongs to an inbox that is open to every agent (`members_only`
false, the default, so a small team configures nothing), or that names them
or one of their teams as a member. Everything an agent reaches is reached
through an inbox: a conversation, its messages, raw mail and attachments, a
call, a live visitor, a contact (through the inboxes of its conversations).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import Forbidden, InvalidInput, NotFound
from hub.events.unit_of_work import store_write
from hub.models import Agent, Role, utcnow
from hub.text import clean_text
from storage.db import Database
from storage.repositories import access as access_rows
from storage.repositories import agents as agent_rows

MAX_TEAM_NAME_CHARS = 100


@dataclass(frozen=True)
class Access:
    """What one agent may read and work in, decided once per request or socket."""

    agent: Agent
    member_of: frozenset[int]

    @property
    def reads_everything(self) -> bool:
        return self.agent.role in (Role.ADMIN, Role.MANAGER)

    @property
    def readable(self) -> frozenset[int] | None:
        """The inbox ids the agent may read, or None for all of them."""
        return None if self.reads_everything else self.member_of

    def can_read(self, inbox_id: int) -> bool:
        return self.reads_everything or inbox_id in self.member_of

    def can_act(self, inbox_id: int) -> bool:
        return self.agent.role is Role.ADMIN or inbox_id in self.member_of

    def check_read(self, inbox_ids: Iterable[int], what: str = "That") -> None:
        """NotFound unless every inbox is readable: to an agent outside an inbox
        its conversations do not exist (ids are sequential; a 403 would confirm one)."""
        if not all(self.can_read(inbox_id) for inbox_id in inbox_ids):
            raise NotFound(f"{what} was not found.")

    def check_act(self, inbox_ids: Iterable[int], what: str = "That") -> None:
        """As `check_read`, then Forbidden where the agent may read but not work."""
        ids = list(inbox_ids)
        self.check_read(ids, what)
        if not all(self.can_act(inbox_id) for inbox_id in ids):
            raise Forbidden(
                f"{what} is in an inbox you can read but do not work in; "
                "an admin can make you a member."
            )


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    agent_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class InboxMembers:
    inbox_id: int
    members_only: bool
    agent_ids: tuple[int, ...] = ()
    team_ids: tuple[int, ...] = ()


@dataclass
class _Members:
    agents: list[int] = field(default_factory=list)
    teams: list[int] = field(default_factory=list)


class AccessService:
    """Decides `Access`, and keeps teams and inbox members (admins change them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def inboxes_of(self, kind: str, key: int | str) -> set[int]:
        """The inboxes a thing is in (`storage.repositories.access.KINDS`); empty
        when there is no such thing."""
        async with self._db.read() as conn:
            return await access_rows.inboxes_of(conn, kind, key)

    async def of(self, agent: Agent) -> Access:
        async with self._db.read() as conn:
            if agent.role is Role.ADMIN:
                member_of = await access_rows.all_inbox_ids(conn)
            else:
                member_of = await access_rows.inboxes_of_agent(conn, agent.id)
        return Access(agent, frozenset(member_of))

    # ---- teams ------------------------------------------------------------------

    async def teams(self) -> list[Team]:
        async with self._db.read() as conn:
            rows = await access_rows.team_rows(conn)
            pairs = await access_rows.team_member_pairs(conn)
        members: dict[int, list[int]] = {}
        for team_id, agent_id in pairs:
            members.setdefault(team_id, []).append(agent_id)
        return [Team(row.id, row.name, tuple(sorted(members.get(row.id, [])))) for row in rows]

    async def create_team(self, name: str, agent_ids: Iterable[int] = ()) -> Team:
        display = _team_name(name)
        ids = tuple(sorted(set(agent_ids)))
        async with store_write(self._db) as conn:
            if await access_rows.team_named(conn, display) is not None:
                raise InvalidInput(f"There is already a team called {display}.")
            await _check_agents(conn, ids)
            team_id = await access_rows.insert_team(conn, display, utcnow())
            await access_rows.set_team_members(conn, team_id, ids)
        return Team(team_id, display, ids)

    async def update_team(self, team_id: int, name: str, agent_ids: Iterable[int]) -> Team:
        display = _team_name(name)
        ids = tuple(sorted(set(agent_ids)))
        async with store_write(self._db) as conn:
            if await access_rows.team_row(conn, team_id) is None:
                raise NotFound("That team was not found.")
            other = await access_rows.team_named(conn, display)
            if other is not None and other != team_id:
                raise InvalidInput(f"There is already a team called {display}.")
            await _check_agents(conn, ids)
            await access_rows.rename_team(conn, team_id, display)
            await access_rows.set_team_members(conn, team_id, ids)
        return Team(team_id, display, ids)

    async def delete_team(self, team_id: int) -> None:
        async with store_write(self._db) as conn:
            if await access_rows.team_row(conn, team_id) is None:
                raise NotFound("That team was not found.")
            await access_rows.delete_team(conn, team_id)

    # ---- inbox members -------------------------------------------------------------

    async def inbox_members(self, inbox_id: int, members_only: bool) -> InboxMembers:
        async with self._db.read() as conn:
            rows = await access_rows.inbox_member_rows(conn, inbox_id)
        members = _Members()
        for row in rows:
            if row.agent_id is not None:
                members.agents.append(row.agent_id)
            elif row.team_id is not None:
                members.teams.append(row.team_id)
        return InboxMembers(
            inbox_id, members_only, tuple(sorted(members.agents)), tuple(sorted(members.teams))
        )

    async def set_inbox_members(
        self,
        inbox_id: int,
        members_only: bool,
        agent_ids: Iterable[int],
        team_ids: Iterable[int],
    ) -> InboxMembers:
        agents, teams = tuple(sorted(set(agent_ids))), tuple(sorted(set(team_ids)))
        async with store_write(self._db) as conn:
            await _check_agents(conn, agents)
            known = {row.id for row in await access_rows.team_rows(conn)}
            if unknown := [team_id for team_id in teams if team_id not in known]:
                raise InvalidInput(f"No team has the id {unknown[0]}.")
            await access_rows.set_inbox_members(conn, inbox_id, members_only, agents, teams)
        return InboxMembers(inbox_id, members_only, agents, teams)


def _team_name(name: str) -> str:
    display = clean_text(name, MAX_TEAM_NAME_CHARS, "name")
    if not display:
        raise InvalidInput("A team needs a name.")
    return display


async def _check_agents(conn: AsyncConnection, agent_ids: Iterable[int]) -> None:
    known = {row.id for row in await agent_rows.all_by_name(conn)}
    if unknown := [agent_id for agent_id in agent_ids if agent_id not in known]:
        raise InvalidInput(f"No agent has the id {unknown[0]}.")
