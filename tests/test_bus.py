"""The event bus contract, run against every backend: memory and Redis."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
import redis.asyncio as redis

from hub.events.bus import EventBus, SubscriberDropped, batch_frame
from tests.nodes import private_redis
from tests.servers import REDIS_URL, require_redis

WAIT = 5.0  # seconds; only reached when something is broken


def bus_url(kind: str) -> str:
    if kind == "memory":
        return "memory://"
    # A fresh channel namespace per test: runs never see each other's events.
    return f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:"


@pytest.fixture(params=["memory", "redis"])
async def url(request) -> str:  # type: ignore[no-untyped-def]
    if request.param == "redis":
        await require_redis()
    return bus_url(request.param)


@pytest.fixture
async def bus(url):  # type: ignore[no-untyped-def]
    started = EventBus(url)
    await started.connect()
    yield started
    await started.disconnect()


async def next_json(subscription):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT):
        return (await subscription.get()).json()


async def test_one_publish_reaches_every_subscriber_of_the_channel_only(bus):
    async with (
        bus.subscribe("a") as first,
        bus.subscribe("a") as second,
        bus.subscribe("b") as other,
    ):
        await bus.publish("a", {"n": 1})
        await bus.publish("b", {"n": 2})
        got = [await next_json(first), await next_json(second), await next_json(other)]
    assert got == [{"n": 1}, {"n": 1}, {"n": 2}]


async def test_events_keep_their_order(bus):
    async with bus.subscribe("a") as sub:
        for n in range(50):
            await bus.publish("a", {"n": n})
        got = [(await next_json(sub))["n"] for _ in range(50)]
    assert got == list(range(50))


async def test_local_subscribers_share_one_backend_subscription(bus):
    async with bus.subscribe("room"), bus.subscribe("room"):
        assert bus.subscriber_count("room") == 2
        assert await backend_subscriptions(bus, "room") == 1
    assert bus.subscriber_count("room") == 0
    assert await backend_subscriptions(bus, "room") == 0


async def backend_subscriptions(bus, channel: str) -> int:  # type: ignore[no-untyped-def]
    backend = bus.backend
    if not hasattr(backend, "prefix"):
        return int(channel in backend._channels)
    client = redis.from_url(REDIS_URL)
    try:
        [(_, count)] = await client.pubsub_numsub(backend.prefix + channel)
        return count
    finally:
        await client.aclose()


async def test_a_slow_subscriber_is_dropped_without_stalling_the_others(bus):
    async with bus.subscribe("a", max_queue=3) as slow, bus.subscribe("a") as fast:
        for n in range(10):
            await bus.publish("a", {"n": n})
        got = [(await next_json(fast))["n"] for _ in range(10)]
        with pytest.raises(SubscriberDropped):
            async with asyncio.timeout(WAIT):
                while True:
                    await slow.get()
    assert got == list(range(10))
    assert slow.dropped


async def test_an_unknown_bus_url_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Unsupported bus URL 'kafka://x'; use one of memory://"):
        EventBus("kafka://x")


# ---- Redis only: several processes, lost connections ---------------------------------


@pytest.fixture
async def redis_url() -> str:
    await require_redis()
    return bus_url("redis")


async def test_an_event_published_on_one_node_reaches_subscribers_on_another(redis_url):
    node_a, node_b = EventBus(redis_url), EventBus(redis_url)
    await node_a.connect()
    await node_b.connect()
    try:
        async with node_b.subscribe("agents") as on_b:
            await node_a.publish("agents", {"from": "a"})
            assert await next_json(on_b) == {"from": "a"}
    finally:
        await node_a.disconnect()
        await node_b.disconnect()


async def test_a_lost_redis_connection_drops_subscribers_and_the_bus_recovers(redis_url):
    # Named connections, so that only this bus's are cut: the Redis server is
    # shared with other tests (and other test processes) running meanwhile.
    name = f"hubtest-{secrets.token_hex(4)}"
    bus = EventBus(f"{redis_url}&client_name={name}")
    await bus.connect()
    admin = redis.from_url(REDIS_URL)
    try:
        async with bus.subscribe("room") as before:
            await bus.publish("room", {"n": 1})
            assert await next_json(before) == {"n": 1}
            # Cut the bus's pub/sub connection, as a Redis restart would.
            ours = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name]
            assert len(ours) == 1
            assert await admin.client_kill_filter(_id=ours[0]["id"]) == 1
            # The subscriber learns of the gap: its client resumes from the store.
            with pytest.raises(SubscriberDropped):
                async with asyncio.timeout(WAIT):
                    await before.get()
        # After the reconnect, new subscribers get new events.
        async with bus.subscribe("room") as after:
            await bus.publish("room", {"n": 2})
            assert await next_json(after) == {"n": 2}
    finally:
        await admin.aclose()
        await bus.disconnect()


async def test_connecting_to_an_unreachable_redis_is_refused(redis_url):
    bus = EventBus(redis_url.replace("6379", "1"))  # nothing listens on port 1
    with pytest.raises(redis.ConnectionError):
        await bus.connect()


async def test_publishing_while_redis_is_unreachable_does_not_raise(caplog):
    async with private_redis() as server:
        bus = EventBus(server.url)
        await bus.connect()
        try:
            await server.stop()  # Redis goes away under a connected hub
            await bus.publish("room", {"n": 1})  # logged, not raised: the data is stored
        finally:
            await bus.disconnect()
    assert "publishing to room failed" in caplog.text


async def test_a_subscriber_cancelled_while_subscribing_stops(bus):
    async def listen() -> None:
        async with bus.subscribe("room") as sub:
            await sub.get()

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)  # let it start: the cancel lands while it subscribes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await task
    assert bus.subscriber_count("room") == 0


async def test_a_burst_of_concurrent_publishes_all_arrive_in_order(bus):
    """More publishes in flight than the Redis pool has connections: none fails,
    and on Redis they share pipelines, in the order they were published."""
    async with bus.subscribe("burst") as subscription:
        await asyncio.gather(*(bus.publish("burst", {"n": n}) for n in range(300)))
        received = [(await next_json(subscription))["n"] for _ in range(300)]
    assert received == list(range(300))
    if hasattr(bus.backend, "pipelines_sent"):
        assert 1 <= bus.backend.pipelines_sent <= 3  # the first alone, the rest together


async def test_a_publisher_that_gives_up_leaves_the_others_theirs(redis_url):
    bus = EventBus(redis_url)
    await bus.connect()
    try:
        async with bus.subscribe("room") as subscription:
            first = asyncio.create_task(bus.publish("room", {"n": 1}))
            abandoned = asyncio.create_task(bus.publish("room", {"n": 2}))
            third = asyncio.create_task(bus.publish("room", {"n": 3}))
            await asyncio.sleep(0)  # all three queued
            abandoned.cancel()
            await asyncio.gather(first, third)
            # Queued before its caller gave up, it still goes out, in its place.
            assert [(await next_json(subscription))["n"] for _ in range(3)] == [1, 2, 3]
    finally:
        await bus.disconnect()


async def test_publishes_pending_at_disconnect_are_failed_and_logged(redis_url, caplog):
    bus = EventBus(redis_url)
    await bus.connect()
    pending = [asyncio.create_task(bus.publish("room", {"n": n})) for n in range(3)]
    await asyncio.sleep(0)  # queued; the task that sends them has not run yet
    await bus.backend.disconnect()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*pending)  # each returned: logged, not raised
    assert caplog.text.count("publishing to room failed") == 3
    await bus.disconnect()


# ---- groups and direct delivery (sockets) ---------------------------------------------------


async def test_events_published_together_reach_a_reader_as_one_group_in_order():
    bus = EventBus("memory://")
    await bus.connect()
    try:
        async with bus.subscribe("a", "b") as sub:
            for n in range(5):
                await bus.publish("a" if n % 2 else "b", {"n": n})
            async with asyncio.timeout(WAIT):
                group = await sub.get_group()
    finally:
        await bus.disconnect()
    assert [event.json()["n"] for event in group] == [0, 1, 2, 3, 4]
    assert json.loads(batch_frame(group)) == {
        "type": "batch",
        "events": [{"n": n} for n in range(5)],
    }
    assert batch_frame(group[:1]) == group[0].data  # a lone event is sent as itself


async def test_direct_delivery_gets_each_subscriber_its_share_and_shares_the_frame_text():
    bus = EventBus("memory://")
    await bus.connect()
    delivered: dict[str, list[tuple[list[str], str]]] = {"x": [], "y": [], "z": []}
    done = asyncio.Event()

    def deliver_to(name: str):  # type: ignore[no-untyped-def]
        def deliver(group, frame):  # type: ignore[no-untyped-def]
            delivered[name].append(([e.channel for e in group], frame))
            done.set()
            return True

        return deliver

    try:
        async with (
            bus.subscribe("agents", "agent:1") as x,
            bus.subscribe("agents", "agent:2") as y,
            bus.subscribe("agent:2") as z,
        ):
            for sub, name in ((x, "x"), (y, "y"), (z, "z")):
                sub.deliver_directly(deliver_to(name))
            await bus.publish("agents", {"n": 1})
            await bus.publish("agent:2", {"n": 2})
            await bus.publish("agents", {"n": 3})
            async with asyncio.timeout(WAIT):
                await done.wait()
    finally:
        await bus.disconnect()
    assert delivered["x"] == [(["agents", "agents"], '{"type":"batch","events":[{"n":1},{"n":3}]}')]
    assert delivered["y"][0][0] == ["agents", "agent:2", "agents"]
    assert json.loads(delivered["y"][0][1])["events"] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert delivered["z"] == [(["agent:2"], '{"n":2}')]


async def test_what_direct_delivery_declines_is_queued_in_order_and_overflow_drops():
    bus = EventBus("memory://")
    await bus.connect()
    accepting = True
    taken: list[str] = []

    def deliver(group, frame):  # type: ignore[no-untyped-def]
        if accepting:
            taken.append(frame)
        return accepting

    try:
        async with bus.subscribe("a", max_queue=4) as sub:
            sub.deliver_directly(deliver)
            await bus.publish("a", {"n": 0})
            await asyncio.sleep(0)  # the bus hands it over on its own
            accepting = False  # a send is in flight: the socket cannot take more now
            for n in (1, 2):
                await bus.publish("a", {"n": n})
                await asyncio.sleep(0)
            accepting = True  # queued events go first: direct delivery waits for the reader
            await bus.publish("a", {"n": 3})
            await asyncio.sleep(0)
            async with asyncio.timeout(WAIT):
                queued = await sub.get_group()
            assert [e.json()["n"] for e in queued] == [1, 2, 3]
            assert taken == ['{"n":0}']
            accepting = False
            for n in range(4, 10):  # more than the queue holds: dropped, not buffered
                await bus.publish("a", {"n": n})
            with pytest.raises(SubscriberDropped):
                async with asyncio.timeout(WAIT):
                    while True:
                        await sub.get_group()
    finally:
        await bus.disconnect()


async def test_a_direct_delivery_that_fails_leaves_the_bus_and_the_others_running(caplog):
    bus = EventBus("memory://")
    await bus.connect()

    def broken(group, frame):  # type: ignore[no-untyped-def]
        raise KeyError("conversation")

    try:
        async with bus.subscribe("a") as failing, bus.subscribe("a") as other:
            failing.deliver_directly(broken)
            await bus.publish("a", {"n": 1})
            await bus.publish("b", {"n": 0})  # the listener goes on reading
            await bus.publish("a", {"n": 2})
            async with asyncio.timeout(WAIT):
                got_other = [(await other.get()).json()["n"] for _ in range(2)]
                got_failing = [(await failing.get()).json()["n"] for _ in range(2)]
    finally:
        await bus.disconnect()
    assert got_other == [1, 2]
    assert got_failing == [1, 2]  # queued for its reader instead, in order
    assert "direct delivery failed" in caplog.text


async def test_a_subscription_refuses_a_second_reader_at_once():
    bus = EventBus("memory://")
    await bus.connect()
    try:
        async with bus.subscribe("c") as subscription:
            first = asyncio.create_task(subscription.get())
            await asyncio.sleep(0)  # the first reader is waiting
            with pytest.raises(RuntimeError, match="one reader"):
                await subscription.get()
            await bus.publish("c", {"n": 1})
            assert (await asyncio.wait_for(first, 5)).json() == {"n": 1}
    finally:
        await bus.disconnect()
