"""Rate limits: token buckets in one process, or shared through Redis by every node."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as redis

from hub.ratelimit import ConnectionCounter, RateLimits, RedisConnections, TokenBucket
from tests.servers import REDIS_URL, require_redis

# Short enough that a test waits well under a second for an expiry.
SHORT_TTL = 0.5
# Generous: a condition not met within this is a failure, not slowness.
DEADLINE = 5.0
POLL = 0.02


def unique_url() -> str:
    return f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"


async def within_deadline(condition) -> None:  # type: ignore[no-untyped-def]
    """Poll `condition()` (a coroutine function) until it is true, or fail at DEADLINE."""
    async with asyncio.timeout(DEADLINE):
        while True:
            if await condition():
                return
            await asyncio.sleep(POLL)  # an entry lapsing sends no notice to await


def test_a_bucket_allows_a_burst_then_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.allow("v") for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.allow("v") for _ in range(2)] == [True, False]
    assert bucket.allow("someone else")


def test_connections_are_counted_per_key_up_to_the_limit():
    counter = ConnectionCounter(limit=2)
    assert counter.acquire("ip") and counter.acquire("ip")
    assert not counter.acquire("ip")
    counter.release("ip")
    assert counter.acquire("ip")


@pytest.fixture(params=["memory", "redis"])
async def limits(request):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        made = RateLimits("memory://")
    else:
        await require_redis()
        made = RateLimits(f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:")
    yield made
    await made.close()


async def test_a_named_bucket_refuses_after_its_burst(limits):
    bucket = limits.bucket("logins", rate=0.001, burst=3)
    assert [await bucket.allow("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    assert await bucket.allow("5.6.7.8")
    # Another name is another bucket.
    assert await limits.bucket("messages", rate=0.001, burst=1).allow("1.2.3.4")


async def test_nodes_sharing_redis_share_one_bucket():
    await require_redis()
    url = f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"
    node_a, node_b = RateLimits(url), RateLimits(url)
    try:
        a = node_a.bucket("logins", rate=0.001, burst=4)
        b = node_b.bucket("logins", rate=0.001, burst=4)
        answers = [await (a if n % 2 else b).allow("1.2.3.4") for n in range(6)]
    finally:
        await node_a.close()
        await node_b.close()
    assert answers == [True, True, True, True, False, False]


async def test_an_unreachable_redis_fails_open(caplog):
    limits = RateLimits("redis://127.0.0.1:1/0")
    try:
        assert await limits.bucket("logins", rate=1, burst=1).allow("1.2.3.4")
    finally:
        await limits.close()
    assert "Redis unreachable; allowing" in caplog.text


async def test_open_connections_are_counted_up_to_the_limit_and_freed_on_release(limits):
    sockets = limits.connections("widget-sockets", limit=2, ttl=SHORT_TTL)
    assert [await sockets.acquire("1.2.3.4") for _ in range(3)] == [True, True, False]
    assert await sockets.acquire("5.6.7.8")
    await sockets.release("1.2.3.4")
    assert await sockets.acquire("1.2.3.4")
    assert not await sockets.acquire("1.2.3.4")


async def test_nodes_sharing_redis_share_one_connection_count():
    await require_redis()
    url = unique_url()
    node_a, node_b = RateLimits(url), RateLimits(url)
    try:
        a = node_a.connections("widget-sockets", limit=3)
        b = node_b.connections("widget-sockets", limit=3)
        assert await a.acquire("1.2.3.4") and await b.acquire("1.2.3.4")
        assert await a.acquire("1.2.3.4")
        assert not await a.acquire("1.2.3.4")
        assert not await b.acquire("1.2.3.4")
        await a.release("1.2.3.4")
        assert await b.acquire("1.2.3.4")
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_live_nodes_heartbeat_keeps_its_connections_counted_past_the_expiry():
    await require_redis()
    limits = RateLimits(unique_url())
    try:
        sockets = limits.connections("widget-sockets", limit=1, ttl=SHORT_TTL)
        assert isinstance(sockets, RedisConnections)
        assert await sockets.acquire("1.2.3.4")
        # Three expiries: without heartbeats the socket would have lapsed long ago.
        await asyncio.sleep(3 * SHORT_TTL)
        assert await sockets.count("1.2.3.4") == 1
        assert not await sockets.acquire("1.2.3.4")
    finally:
        await limits.close()


async def test_a_silent_nodes_connections_stop_counting_within_the_expiry(monkeypatch):
    await require_redis()
    url = unique_url()
    node_a, node_b = RateLimits(url), RateLimits(url)
    try:
        a = node_a.connections("widget-sockets", limit=2, ttl=SHORT_TTL)
        b = node_b.connections("widget-sockets", limit=2, ttl=SHORT_TTL)
        assert await a.acquire("1.2.3.4") and await a.acquire("1.2.3.4")
        assert not await b.acquire("1.2.3.4")

        async def dead() -> None:  # node A stops beating, as a killed process does
            return None

        monkeypatch.setattr(a, "refresh", dead)
        loop = asyncio.get_running_loop()
        silent_since = loop.time()
        await within_deadline(lambda: b.acquire("1.2.3.4"))
        # Within one expiry (plus the poll and a heartbeat already in flight).
        assert loop.time() - silent_since < SHORT_TTL + SHORT_TTL / 3 + 0.2
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_heartbeat_puts_back_connections_that_redis_lost():
    await require_redis()
    url = unique_url()
    limits = RateLimits(url)
    client = redis.from_url(url.split("?")[0])
    try:
        sockets = limits.connections("widget-sockets", limit=5)
        assert isinstance(sockets, RedisConnections)
        assert await sockets.acquire("1.2.3.4")
        prefix = url.split("prefix=")[1]
        await client.delete(f"{prefix}conn:widget-sockets:1.2.3.4")  # as after a restart
        assert await sockets.count("1.2.3.4") == 0
        await sockets.refresh()
        assert await sockets.count("1.2.3.4") == 1
    finally:
        await limits.close()
        await client.aclose()


async def test_a_stopping_node_frees_its_connections_at_once():
    await require_redis()
    url = unique_url()
    node_a, node_b = RateLimits(url), RateLimits(url)
    try:
        a = node_a.connections("widget-sockets", limit=1)
        b = node_b.connections("widget-sockets", limit=1)
        assert await a.acquire("1.2.3.4")
        await node_a.close()
        assert await b.acquire("1.2.3.4")
    finally:
        await node_b.close()


async def test_connection_counting_fails_open_when_redis_is_unreachable(caplog):
    limits = RateLimits("redis://127.0.0.1:1/0")
    try:
        sockets = limits.connections("widget-sockets", limit=1)
        assert await sockets.acquire("1.2.3.4")
        assert await sockets.acquire("1.2.3.4")
        await sockets.release("1.2.3.4")
    finally:
        await limits.close()
    assert "connection limit: Redis unreachable; allowing" in caplog.text
