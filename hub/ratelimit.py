"""Rate limits: token buckets in process memory, or in Redis shared by every node."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict

log = logging.getLogger(__name__)

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

    def __init__(self, bus_url: str) -> None:
        self._redis = None
        self._prefix = ""
        if bus_url.startswith(("redis://", "rediss://")):
            import redis.asyncio as redis

            from hub.bus_redis import split_redis_url

            plain_url, self._prefix = split_redis_url(bus_url)
            self._redis = redis.from_url(plain_url)
            self._script = self._redis.register_script(_BUCKET_SCRIPT)

    def bucket(self, name: str, rate: float, burst: int) -> Limiter:
        if self._redis is None:
            return LocalLimiter(rate, burst)
        return RedisLimiter(self._script, f"{self._prefix}limit:{name}:", rate, burst)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
