"""Which visitors are on a site right now: keys with expiry, behind a small interface.

Each online visitor is one key (site, visitor) holding a small JSON-able
snapshot (current page, state, …) and an expiry. Every heartbeat, page view
or visibility change touches the key; a key that is not touched in time
expires and the visitor has left. This is exactly what Redis gives with
`SET key value EX ttl` and a sorted set of deadlines per site, so a Redis
backend can take the in-memory one's place across nodes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from hub.backends import Backends, backends_of

# The widget pings every 25 s (docs/widget-protocol.md); missing three pings
# in a row means the tab is gone (closed laptop, lost network).
LEAVE_AFTER_SECONDS = 75.0
# When a socket closes the visitor may only be loading the next page of a
# multi-page site, which reconnects within a second or two; a closed socket
# that does not come back within this time has left.
RECONNECT_GRACE_SECONDS = 20.0
# No page view and no return to the tab for this long: the person is reading
# something long or has walked away; agents see them as idle.
IDLE_AFTER_SECONDS = 180.0

Clock = Callable[[], float]
Snapshot = dict[str, Any]


class PresenceBackend(ABC):
    """Online visitors per site; times are the clock's seconds (epoch)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock

    @abstractmethod
    async def touch(self, site: int, visitor: str, state: Snapshot, ttl: float) -> None:
        """Store the visitor's snapshot and keep them online for `ttl` more seconds."""

    @abstractmethod
    async def get(self, site: int, visitor: str) -> Snapshot | None: ...

    @abstractmethod
    async def remove(self, site: int, visitor: str) -> Snapshot | None: ...

    @abstractmethod
    async def online(self, site: int | None = None) -> list[Snapshot]:
        """Snapshots of the visitors online (on one site, or everywhere)."""

    @abstractmethod
    async def expired(self) -> list[tuple[int, str, Snapshot]]:
        """Remove and return the keys whose time is up."""

    async def close(self) -> None:
        """Release connections (nothing to do in memory)."""
        return None


class MemoryPresence(PresenceBackend):
    """The embedded default: one process, a dict of (site, visitor) -> (deadline, snapshot)."""

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._keys: dict[tuple[int, str], tuple[float, Snapshot]] = {}

    async def touch(self, site: int, visitor: str, state: Snapshot, ttl: float) -> None:
        self._keys[(site, visitor)] = (self.clock() + ttl, state)

    async def get(self, site: int, visitor: str) -> Snapshot | None:
        entry = self._keys.get((site, visitor))
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    async def remove(self, site: int, visitor: str) -> Snapshot | None:
        entry = self._keys.pop((site, visitor), None)
        return entry[1] if entry else None

    async def online(self, site: int | None = None) -> list[Snapshot]:
        now = self.clock()
        return [
            state
            for (key_site, _), (deadline, state) in self._keys.items()
            if deadline > now and (site is None or key_site == site)
        ]

    async def expired(self) -> list[tuple[int, str, Snapshot]]:
        now = self.clock()
        gone = [key for key, (deadline, _) in self._keys.items() if deadline <= now]
        return [(site, visitor, self._keys.pop((site, visitor))[1]) for site, visitor in gone]


def presence_backend(backends: str | Backends, clock: Clock = time.time) -> PresenceBackend:
    """In this process for the embedded default; in Redis when the bus is Redis."""
    if backends_of(backends)[0].shared:
        from hub.visitors.presence_redis import RedisPresence

        return RedisPresence(backends, clock)
    return MemoryPresence(clock)
