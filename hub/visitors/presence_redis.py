"""Visitor presence in Redis: the same keys-with-expiry, shared by every hub process.

    {prefix}visitors:deadline   sorted set, member "site|visitor", score = deadline
    {prefix}visitors:snapshot   hash, field "site|visitor", value = JSON snapshot

A visitor is online while their deadline is in the future. `expired()` claims
each lapsed member with ZREM, which only one process can win, so every
departure is reported once across nodes; a node that dies simply stops
touching its visitors, and they lapse.
"""

from __future__ import annotations

import json
import time
from typing import cast

from hub.backends import Backends, backends_of
from hub.visitors.presence import Clock, PresenceBackend, Snapshot


def _member(site: int, visitor: str) -> str:
    return f"{site}|{visitor}"


def _parse(member: bytes | str) -> tuple[int, str]:
    text = member.decode() if isinstance(member, bytes) else member
    site, visitor = text.split("|", 1)
    return int(site), visitor


class RedisPresence(PresenceBackend):
    def __init__(self, backends: str | Backends, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._backends, self._owned = backends_of(backends)
        self._redis = self._backends.redis()
        prefix = self._backends.prefix
        self._deadlines = f"{prefix}visitors:deadline"
        self._snapshots = f"{prefix}visitors:snapshot"

    async def touch(self, site: int, visitor: str, state: Snapshot, ttl: float) -> None:
        member = _member(site, visitor)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._snapshots, member, json.dumps(state, separators=(",", ":")))
            pipe.zadd(self._deadlines, {member: self.clock() + ttl})
            await pipe.execute()

    async def get(self, site: int, visitor: str) -> Snapshot | None:
        member = _member(site, visitor)
        deadline = await self._redis.zscore(self._deadlines, member)
        if deadline is None or deadline <= self.clock():
            return None
        raw = await self._redis.hget(self._snapshots, member)
        return json.loads(raw) if raw is not None else None

    async def remove(self, site: int, visitor: str) -> Snapshot | None:
        member = _member(site, visitor)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._snapshots, member)
            pipe.hdel(self._snapshots, member)
            pipe.zrem(self._deadlines, member)
            raw, _, _ = await pipe.execute()
        return json.loads(raw) if raw is not None else None

    async def online(self, site: int | None = None) -> list[Snapshot]:
        members = cast(  # members only (no scores), as bytes: redis types every form as one
            list[bytes],
            await self._redis.zrangebyscore(self._deadlines, f"({self.clock()}", "+inf"),
        )
        if site is not None:
            members = [m for m in members if _parse(m)[0] == site]
        if not members:
            return []
        raws = await self._redis.hmget(self._snapshots, members)
        return [json.loads(raw) for raw in raws if raw is not None]

    async def expired(self) -> list[tuple[int, str, Snapshot]]:
        lapsed = cast(  # members only (no scores), as bytes: redis types every form as one
            list[bytes], await self._redis.zrangebyscore(self._deadlines, "-inf", self.clock())
        )
        gone: list[tuple[int, str, Snapshot]] = []
        for member in lapsed:
            if not await self._redis.zrem(self._deadlines, member):
                continue  # another process claimed it
            raw = await self._redis.hget(self._snapshots, member)
            await self._redis.hdel(self._snapshots, member)
            site, visitor = _parse(member)
            gone.append((site, visitor, json.loads(raw) if raw is not None else {}))
        return gone

    async def close(self) -> None:
        if self._owned:
            await self._backends.close()
