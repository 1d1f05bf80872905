"""The visitor presence contract, on every backend: in memory and in Redis."""

from __future__ import annotations

import secrets

import pytest

from hub.visitors.presence import MemoryPresence, presence_backend
from hub.visitors.presence_redis import RedisPresence
from tests.clock import FakeClock
from tests.servers import REDIS_URL, require_redis


def redis_url() -> str:
    return f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"


@pytest.fixture(params=["memory", "redis"])
async def presence(request):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    if request.param == "memory":
        backend = presence_backend("memory://", clock)
        assert isinstance(backend, MemoryPresence)
    else:
        await require_redis()
        backend = presence_backend(redis_url(), clock)
        assert isinstance(backend, RedisPresence)
    yield backend, clock
    await backend.close()


async def test_a_touched_visitor_is_online_until_the_ttl_runs_out(presence):
    backend, clock = presence
    await backend.touch(1, "v_a", {"id": "v_a", "url": "https://shop.test/"}, ttl=30)
    assert await backend.get(1, "v_a") == {"id": "v_a", "url": "https://shop.test/"}
    clock.advance(29)
    assert [s["id"] for s in await backend.online(1)] == ["v_a"]
    clock.advance(1)
    assert await backend.get(1, "v_a") is None
    assert await backend.online(1) == []


async def test_touching_again_extends_and_replaces_the_snapshot(presence):
    backend, clock = presence
    await backend.touch(1, "v_a", {"page": 1}, ttl=30)
    clock.advance(20)
    await backend.touch(1, "v_a", {"page": 2}, ttl=30)
    clock.advance(20)
    assert await backend.get(1, "v_a") == {"page": 2}


async def test_online_is_per_site_or_everywhere(presence):
    backend, _ = presence
    await backend.touch(1, "v_a", {"id": "a"}, ttl=30)
    await backend.touch(2, "v_b", {"id": "b"}, ttl=30)
    assert [s["id"] for s in await backend.online(1)] == ["a"]
    assert sorted(s["id"] for s in await backend.online()) == ["a", "b"]


async def test_remove_returns_the_last_snapshot_once(presence):
    backend, _ = presence
    await backend.touch(1, "v_a", {"id": "a"}, ttl=30)
    assert await backend.remove(1, "v_a") == {"id": "a"}
    assert await backend.remove(1, "v_a") is None
    assert await backend.online() == []


async def test_expired_visitors_are_reported_once_with_their_snapshot(presence):
    backend, clock = presence
    await backend.touch(1, "v_a", {"id": "a"}, ttl=10)
    await backend.touch(1, "v_b", {"id": "b"}, ttl=60)
    clock.advance(10)
    assert await backend.expired() == [(1, "v_a", {"id": "a"})]
    assert await backend.expired() == []
    assert [s["id"] for s in await backend.online()] == ["b"]


async def test_two_nodes_sharing_redis_see_the_same_visitors_and_report_a_departure_once():
    await require_redis()
    url = redis_url()
    clock = FakeClock()
    node_a, node_b = RedisPresence(url, clock), RedisPresence(url, clock)
    try:
        await node_a.touch(1, "v_a", {"id": "a"}, ttl=10)
        assert await node_b.get(1, "v_a") == {"id": "a"}
        clock.advance(11)  # node A died: nobody touches v_a any more
        reports = await node_a.expired() + await node_b.expired()
        assert reports == [(1, "v_a", {"id": "a"})]
    finally:
        await node_a.close()
        await node_b.close()
