"""The event bus: local fan-out, backend subscriptions, slow consumers."""

from __future__ import annotations

import asyncio

import pytest

from hub.bus import EventBus, SubscriberDropped


@pytest.fixture
async def bus():  # type: ignore[no-untyped-def]
    started = EventBus("memory://")
    await started.connect()
    yield started
    await started.disconnect()


async def test_one_publish_reaches_every_subscriber_of_the_channel_only(bus):
    async with (
        bus.subscribe("a") as first,
        bus.subscribe("a") as second,
        bus.subscribe("b") as other,
    ):
        await bus.publish("a", {"n": 1})
        await bus.publish("b", {"n": 2})
        async with asyncio.timeout(5):
            got = [
                (await first.get()).json(),
                (await second.get()).json(),
                (await other.get()).json(),
            ]
    assert got == [{"n": 1}, {"n": 1}, {"n": 2}]


async def test_events_keep_their_order(bus):
    async with bus.subscribe("a") as sub:
        for n in range(50):
            await bus.publish("a", {"n": n})
        async with asyncio.timeout(5):
            got = [(await sub.get()).json()["n"] for _ in range(50)]
    assert got == list(range(50))


async def test_the_backend_is_subscribed_for_the_first_and_released_after_the_last(bus):
    backend_channels = bus.backend._channels
    async with bus.subscribe("room"):
        async with bus.subscribe("room"):
            assert backend_channels == {"room"}
        assert backend_channels == {"room"}
    assert backend_channels == set()
    assert bus.subscriber_count("room") == 0


async def test_a_slow_subscriber_is_dropped_without_stalling_the_others(bus):
    async with bus.subscribe("a", max_queue=3) as slow, bus.subscribe("a") as fast:
        for n in range(10):
            await bus.publish("a", {"n": n})
        async with asyncio.timeout(5):
            got = [(await fast.get()).json()["n"] for _ in range(10)]
            with pytest.raises(SubscriberDropped):
                while True:
                    await slow.get()
    assert got == list(range(10))
    assert slow.dropped


async def test_an_unknown_bus_url_is_refused_with_the_choices():
    with pytest.raises(
        ValueError, match=r"Unsupported event bus URL 'kafka://x'; use one of memory://"
    ):
        EventBus("kafka://x")
