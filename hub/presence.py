"""Which agents are online (have a console open), in this process.

An agent is online while at least one console socket of theirs is open.
Widgets learn only whether *any* agent is online, to show the away form.
The in-memory backend fits the embedded default; a Redis backend with expiry
takes its place across nodes.
"""

from __future__ import annotations

from hub import events
from hub.bus import EventBus


class AgentPresence:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._sockets: dict[int, int] = {}

    def online_agent_ids(self) -> set[int]:
        return set(self._sockets)

    def any_online(self) -> bool:
        return bool(self._sockets)

    async def connected(self, agent_id: int) -> None:
        was_anyone = self.any_online()
        count = self._sockets.get(agent_id, 0)
        self._sockets[agent_id] = count + 1
        if count == 0:
            await self._announce(agent_id, online=True, was_anyone=was_anyone)

    async def disconnected(self, agent_id: int) -> None:
        count = self._sockets.get(agent_id, 0) - 1
        if count > 0:
            self._sockets[agent_id] = count
            return
        self._sockets.pop(agent_id, None)
        await self._announce(agent_id, online=False, was_anyone=True)

    async def _announce(self, agent_id: int, online: bool, was_anyone: bool) -> None:
        await self._bus.publish(
            events.AGENTS, {"type": "agent_presence", "agent_id": agent_id, "online": online}
        )
        if was_anyone != self.any_online():
            await self._bus.publish(
                events.WIDGETS, {"type": "presence", "agents_online": self.any_online()}
            )
