"""Agent presence: one process, and several processes sharing Redis."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from hub.agents.presence import (
    ENTRY_TTL_SECONDS,
    AgentPresence,
    RedisSharedPresence,
    shared_presence,
)
from hub.backends import Backends
from hub.events import topics
from hub.events.bus import EventBus
from tests.servers import REDIS_URL, require_redis

WAIT = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def next_json(subscription):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT):
        return (await subscription.get()).json()


async def test_widgets_hear_only_the_transitions_of_anyone_online():
    bus = EventBus("memory://")
    await bus.connect()
    presence = AgentPresence(bus)
    await presence.start()
    try:
        async with bus.subscribe(topics.WIDGETS) as widgets:
            await presence.connected(1)
            await presence.connected(1)  # a second tab: no news
            await presence.connected(2)
            await presence.disconnected(1)
            await presence.disconnected(2)
            assert presence.online_agent_ids() == {1}
            await presence.disconnected(1)
            got = [await next_json(widgets), await next_json(widgets)]
        assert got == [
            {"type": "presence", "agents_online": True},
            {"type": "presence", "agents_online": False},
        ]
        assert not presence.any_online()
    finally:
        await presence.stop()
        await bus.disconnect()


@pytest.fixture
async def cluster():  # type: ignore[no-untyped-def]
    """Two nodes' presence sharing one Redis namespace, on one fake clock."""
    await require_redis()
    url = f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"
    clock = Clock()
    nodes = []
    for _ in range(2):
        bus = EventBus(url)
        await bus.connect()
        presence = AgentPresence(bus, RedisSharedPresence(url), clock)
        await presence.start()
        nodes.append((bus, presence))
    yield clock, nodes
    for bus, presence in nodes:
        await presence.stop()
        await bus.disconnect()


async def test_an_agent_on_one_node_is_online_on_every_node(cluster):
    _, [(_, node_a), (bus_b, node_b)] = cluster
    async with bus_b.subscribe(topics.PRESENCE_SYNC) as sync:
        await node_a.connected(7)
        await next_json(sync)  # node B was told to look again
    await node_b.refresh()
    assert node_b.any_online() and node_b.online_agent_ids() == {7}
    await node_a.disconnected(7)
    await node_b.refresh()
    assert not node_b.any_online()


async def test_a_dead_nodes_agents_drop_out_after_their_entries_expire(cluster):
    clock, [(_, node_a), (bus_b, node_b)] = cluster
    await node_a.connected(7)
    await node_b.refresh()
    assert node_b.online_agent_ids() == {7}
    # Node A dies: no heartbeat, no goodbye. Its entry outlives it only until the TTL.
    node_a._heartbeat.cancel()
    clock.now += ENTRY_TTL_SECONDS - 1
    await node_b.refresh()
    assert node_b.online_agent_ids() == {7}
    async with bus_b.subscribe(topics.WIDGETS) as widgets:
        clock.now += 2
        await node_b.refresh()
        assert node_b.online_agent_ids() == set()
        # Earlier "online" news may still be in flight; the "offline" news must come.
        while (await next_json(widgets))["agents_online"]:
            pass


@pytest.fixture(params=["memory", "redis"])
async def one_node(request):  # type: ignore[no-untyped-def]
    """Agent presence on the embedded backend and on Redis, through the one registry."""
    if request.param == "memory":
        url = "memory://"
    else:
        await require_redis()
        url = f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"
    backends = Backends(url)
    bus = EventBus(url)
    await bus.connect()
    presence = AgentPresence(bus, shared_presence(backends), Clock())
    await presence.start()
    yield bus, presence
    await presence.stop()
    await bus.disconnect()
    await backends.close()


async def test_presence_contract_online_while_any_tab_is_open_on_either_backend(one_node):
    bus, presence = one_node
    async with bus.subscribe(topics.WIDGETS) as widgets:
        await presence.connected(3)
        await presence.connected(3)  # a second tab
        assert (await next_json(widgets))["agents_online"] is True
        await presence.disconnected(3)
        await presence.refresh()
        assert presence.online_agent_ids() == {3}  # one tab is still open
        await presence.disconnected(3)
        assert (await next_json(widgets))["agents_online"] is False
    await presence.refresh()
    assert not presence.any_online() and presence.online_agent_ids() == set()
