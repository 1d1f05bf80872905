"""Rate limits: token buckets in one process, or shared through Redis by every node."""

from __future__ import annotations

import secrets

import pytest

from hub.ratelimit import ConnectionCounter, RateLimits, TokenBucket
from tests.servers import REDIS_URL, require_redis


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
