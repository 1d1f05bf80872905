"""Which agents are online (have a console open), across every hub process.

An agent is online while at least one console socket of theirs is open on
any node. Each process counts its own sockets; with Redis configured it also
writes "agent A is on node N until T" entries that it refreshes on a
heartbeat, so every node sees the agents of every other node, and a dead
node's agents drop out when their entries expire. Widgets learn only whether
*any* agent is online, to show the away form.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import cast

from hub.backends import Backends, backends_of
from hub.events import topics
from hub.events.bus import EventBus, SubscriberDropped
from hub.models import Agent, Availability

log = logging.getLogger(__name__)

# Each node re-announces its agents this often …
HEARTBEAT_SECONDS = 10.0
# … and an announcement lives this long: a node that misses three heartbeats
# (crashed, partitioned) no longer counts its agents as online.
ENTRY_TTL_SECONDS = 30.0

Clock = Callable[[], float]


class SharedPresence:
    """Where nodes meet. The embedded default has only this process: nothing to share."""

    async def announce(self, node: str, agent_ids: set[int], deadline: float) -> None:
        return None

    async def online(self, now: float) -> set[int]:
        return set()

    async def close(self) -> None:
        return None


class RedisSharedPresence(SharedPresence):
    """A sorted set of `node|agent` members scored by their deadline."""

    def __init__(self, backends: str | Backends) -> None:
        self._backends, self._owned = backends_of(backends)
        self._redis = self._backends.redis()
        self._key = f"{self._backends.prefix}agents-online"

    async def announce(self, node: str, agent_ids: set[int], deadline: float) -> None:
        # Members only (no scores), as bytes: redis types every form of the reply as one.
        members = cast(list[bytes], await self._redis.zrange(self._key, 0, -1))
        mine = [m for m in members if m.decode().startswith(f"{node}|")]
        async with self._redis.pipeline(transaction=True) as pipe:
            if mine:
                pipe.zrem(self._key, *mine)
            if agent_ids:
                pipe.zadd(self._key, {f"{node}|{agent_id}": deadline for agent_id in agent_ids})
            await pipe.execute()

    async def online(self, now: float) -> set[int]:
        await self._redis.zremrangebyscore(self._key, "-inf", now)
        members = cast(list[bytes], await self._redis.zrangebyscore(self._key, now, "+inf"))
        return {int(member.decode().rsplit("|", 1)[1]) for member in members}

    async def close(self) -> None:
        if self._owned:
            await self._backends.close()


def shared_presence(backends: Backends) -> SharedPresence:
    """In Redis when the backends are shared; nothing to share otherwise."""
    return RedisSharedPresence(backends) if backends.shared else SharedPresence()


class AgentPresence:
    def __init__(
        self, bus: EventBus, shared: SharedPresence | None = None, clock: Clock = time.time
    ) -> None:
        self._bus = bus
        self._shared = shared or SharedPresence()
        self._clock = clock
        self.node = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._sockets: dict[int, int] = {}
        self._elsewhere: set[int] = set()
        self._announced_any: bool | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    def online_agent_ids(self) -> set[int]:
        return set(self._sockets) | self._elsewhere

    def any_online(self) -> bool:
        return bool(self._sockets) or bool(self._elsewhere)

    async def start(self) -> None:
        await self.refresh()
        self._heartbeat = asyncio.create_task(self._beat(), name="agent-presence")
        self._listener = asyncio.create_task(self._listen(), name="agent-presence-sync")

    async def stop(self) -> None:
        for task in (self._heartbeat, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            # Leave at once rather than after the entries expire.
            await self._shared.announce(self.node, set(), self._clock())
        await self._shared.close()

    async def connected(self, agent_id: int) -> None:
        count = self._sockets.get(agent_id, 0)
        self._sockets[agent_id] = count + 1
        if count == 0:
            await self._changed(agent_id, online=True)

    async def disconnected(self, agent_id: int) -> None:
        count = self._sockets.get(agent_id, 0) - 1
        if count > 0:
            self._sockets[agent_id] = count
            return
        self._sockets.pop(agent_id, None)
        await self._changed(agent_id, online=False)

    async def _changed(self, agent_id: int, online: bool) -> None:
        await self._bus.publish(
            topics.AGENTS, {"type": "agent_presence", "agent_id": agent_id, "online": online}
        )
        await self.refresh()
        # Other nodes refresh now instead of at their next heartbeat.
        await self._bus.publish(topics.PRESENCE_SYNC, {"node": self.node})

    async def refresh(self) -> None:
        """Announce this node's agents, learn the others', tell widgets if that changed."""
        now = self._clock()
        try:
            await self._shared.announce(self.node, set(self._sockets), now + ENTRY_TTL_SECONDS)
            self._elsewhere = await self._shared.online(now)
        except Exception:
            # Keep the last view; the next heartbeat tries again.
            log.warning("agent presence: shared store unreachable", exc_info=True)
        anyone = self.any_online()
        if anyone != self._announced_any:
            if self._announced_any is not None:
                await self._bus.publish(
                    topics.WIDGETS, {"type": "presence", "agents_online": anyone}
                )
            self._announced_any = anyone

    async def _listen(self) -> None:
        while True:
            async with self._bus.subscribe(topics.PRESENCE_SYNC) as sync:
                try:
                    while True:
                        event = await sync.get()
                        if event.json().get("node") != self.node:
                            await self.refresh()
                except SubscriberDropped:
                    await self.refresh()  # events were missed: look, then listen again

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.refresh()


def availability_of(agent: Agent, online_ids: set[int]) -> Availability:
    """What colleagues see: the agent's choice while a console of theirs is open,
    offline otherwise (the last tab closing makes them offline by itself)."""
    if agent.id not in online_ids or not agent.active:
        return Availability.OFFLINE
    return agent.availability
