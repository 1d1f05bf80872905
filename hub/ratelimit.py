"""Rate limits: token buckets in process memory, or in Redis shared by every node.

Two kinds of limit, each with a local and a Redis implementation chosen by
`RateLimits` from the bus URL:

- `Limiter`: a token bucket per key (messages per visitor, logins per address).
- `ConnectionLimiter`: open connections per key (widget sockets per address).
  In Redis each open socket is a member of a sorted set per key, scored with
  the moment it stops counting; its node pushes that moment forward on a
  heartbeat, so the sockets of a node that dies (even by SIGKILL) stop
  counting within one expiry.

Both fail open: when Redis is unreachable they allow, and log it, rather than
lock every visitor out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict

from hub.backends import Backends, backends_of

log = logging.getLogger(__name__)

# A node's sockets keep counting this long after its last heartbeat …
DEFAULT_CONNECTION_TTL_SECONDS = 30.0
# … and it beats this many times per expiry, so two missed beats cost nothing.
HEARTBEATS_PER_TTL = 3
# Refresh at most this many sockets per Redis call, so one call stays short.
REFRESH_BATCH = 1000

# Forget idle buckets beyond this many keys so that memory stays bounded
# under a flood of distinct senders.
MAX_TRACKED_KEYS = 100_000


class TokenBucket:
    """Per-key token buckets: `burst` at once, then `rate` per second."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = self._clock()
        tokens, stamp = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
        return allowed


class ConnectionCounter:
    """Open connections per key (an IP address), with a ceiling."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._counts.get(key, 0) - 1
        if count <= 0:
            self._counts.pop(key, None)
        else:
            self._counts[key] = count

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)


class ConnectionLimiter(ABC):
    """Open connections per key with a ceiling (`limit`, read at every acquire)."""

    limit: int

    @abstractmethod
    async def acquire(self, key: str) -> bool:
        """Count one more connection for `key`, unless that would pass the limit."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """One connection of `key` that `acquire` admitted has closed."""

    @abstractmethod
    async def close(self) -> None:
        """Stop counting this process's connections (at shutdown)."""


class LocalConnections(ConnectionLimiter):
    """Connections counted in this process only."""

    def __init__(self, limit: int) -> None:
        self._counter = ConnectionCounter(limit)

    @property
    def limit(self) -> int:
        return self._counter.limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._counter.limit = value

    async def acquire(self, key: str) -> bool:
        return self._counter.acquire(key)

    async def release(self, key: str) -> None:
        self._counter.release(key)

    async def close(self) -> None:
        return None


# Admit one more member to a key's sorted set unless the members still in
# date are at the limit. Times are the Redis server's, in milliseconds, so
# every node agrees on them.
_ACQUIRE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

# A heartbeat: KEYS[i] holds member ARGV[i + 1]; each gets a new expiry. ZADD
# without XX also puts back members that an emptied or restarted Redis lost.
_REFRESH_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""

_COUNT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisConnections(ConnectionLimiter):
    """Connections per key counted across every node sharing one Redis.

        {prefix}conn:{name}:{key}   sorted set, member "node:n" (one per open
                                    connection), score = when it stops counting (ms)

    Each node refreshes its own members every `ttl / HEARTBEATS_PER_TTL`
    seconds; a node that stops (or dies) stops refreshing, and its members
    lapse after at most `ttl`.
    """

    def __init__(self, client, prefix: str, limit: int, ttl: float) -> None:  # type: ignore[no-untyped-def]
        self.limit = limit
        self.ttl = ttl
        self._client = client
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE_SCRIPT)
        self._refresh = client.register_script(_REFRESH_SCRIPT)
        self._count = client.register_script(_COUNT_SCRIPT)
        self._node = secrets.token_hex(6)
        self._serial = 0
        self._held: dict[str, list[str]] = {}  # key -> this node's members for it
        # A release waits for a heartbeat in flight, so that the heartbeat
        # cannot put back a member the release has just removed.
        self._writing = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    async def acquire(self, key: str) -> bool:
        self._serial += 1
        member = f"{self._node}:{self._serial}"
        try:
            admitted = await self._acquire(
                keys=[self._prefix + key], args=[self.limit, self._ttl_ms, member]
            )
        except Exception:
            # Fail open; the heartbeat registers the socket once Redis is back.
            log.warning("connection limit: Redis unreachable; allowing", exc_info=True)
            admitted = 1
        if admitted:
            self._held.setdefault(key, []).append(member)
            self._start_heartbeat()
        return bool(admitted)

    async def release(self, key: str) -> None:
        members = self._held.get(key)
        if not members:
            return
        member = members.pop()
        if not members:
            del self._held[key]
        async with self._writing:
            try:
                await self._client.zrem(self._prefix + key, member)
            except Exception:
                # It lapses by itself within the expiry.
                log.warning("connection limit: Redis unreachable; release deferred to expiry")

    async def count(self, key: str) -> int:
        """Connections counted for `key` on every node right now."""
        return int(await self._count(keys=[self._prefix + key]))

    async def refresh(self) -> None:
        """One heartbeat: push every connection of this node's expiry forward."""
        held = [(key, member) for key, members in self._held.items() for member in members]
        async with self._writing:
            for start in range(0, len(held), REFRESH_BATCH):
                batch = held[start : start + REFRESH_BATCH]
                await self._refresh(
                    keys=[self._prefix + key for key, _ in batch],
                    args=[self._ttl_ms, *(member for _, member in batch)],
                )

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="connection-limit-heartbeat")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / HEARTBEATS_PER_TTL)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("connection limit: heartbeat failed; retrying", exc_info=True)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        held, self._held = self._held, {}
        if not held:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, members in held.items():
                    pipe.zrem(self._prefix + key, *members)
                await pipe.execute()
        except Exception:
            log.warning("connection limit: Redis unreachable at close; entries will expire")


class Limiter(ABC):
    """A named token bucket per key, possibly shared by every hub process."""

    @abstractmethod
    async def allow(self, key: str) -> bool: ...


class LocalLimiter(Limiter):
    def __init__(self, rate: float, burst: int) -> None:
        self.bucket = TokenBucket(rate, burst)

    async def allow(self, key: str) -> bool:
        return self.bucket.allow(key)


# One atomic step of a token bucket kept in a Redis hash; the time is the
# server's, so every node agrees on it.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""


class RedisLimiter(Limiter):
    def __init__(self, script, prefix: str, rate: float, burst: int) -> None:  # type: ignore[no-untyped-def]
        self._script = script
        self._prefix = prefix
        self._args = (rate, burst)

    async def allow(self, key: str) -> bool:
        try:
            return bool(await self._script(keys=[self._prefix + key], args=self._args))
        except Exception:
            # Fail open: an unreachable Redis must not lock every visitor out.
            log.warning("rate limit: Redis unreachable; allowing", exc_info=True)
            return True


class RateLimits:
    """Makes limiters: in this process, or in Redis (shared by all nodes) when configured."""

    def __init__(self, backends: str | Backends) -> None:
        self._backends, self._owned = backends_of(backends)
        self._redis = None
        self._prefix = self._backends.prefix
        if self._backends.shared:
            self._redis = self._backends.redis()
            self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._connection_limiters: list[ConnectionLimiter] = []

    def bucket(self, name: str, rate: float, burst: int) -> Limiter:
        if self._redis is None:
            return LocalLimiter(rate, burst)
        return RedisLimiter(self._script, f"{self._prefix}limit:{name}:", rate, burst)

    def connections(
        self, name: str, limit: int, ttl: float = DEFAULT_CONNECTION_TTL_SECONDS
    ) -> ConnectionLimiter:
        """Open connections per key; in Redis a dead node's stop counting after `ttl` s."""
        made: ConnectionLimiter
        if self._redis is None:
            made = LocalConnections(limit)
        else:
            made = RedisConnections(self._redis, f"{self._prefix}conn:{name}:", limit, ttl)
        self._connection_limiters.append(made)
        return made

    async def close(self) -> None:
        for limiter in self._connection_limiters:
            await limiter.close()
        if self._owned:
            await self._backends.close()
