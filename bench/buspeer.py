"""`python -m bench.buspeer --url URL --channel NAME --via raw|bus`: the receiving end
of the bus benchmark, in its own process (pinned to the servers' core).

It subscribes — with a bare redis-py pub/sub connection (`raw`) or through the
hub's `EventBus` with its Redis backend (`bus`) — prints `ready`, then takes
every payload `{"t": SEND_NS, …}` and records `monotonic_ns() - SEND_NS`
(CLOCK_MONOTONIC is one clock for every process on the machine). A payload
`{"end": true}` ends the run; it prints one JSON line with what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator

from bench.stats import CpuMeter, ms, percentiles


async def _raw(url: str, channel: str) -> AsyncGenerator[str, None]:
    import redis.asyncio as redis

    from hub.backends import split_redis_url

    plain_url, prefix = split_redis_url(url)
    client = redis.from_url(plain_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(prefix + channel)
    try:
        yield ""  # subscribed
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None and message["type"] == "message":
                yield message["data"].decode()
    finally:
        await pubsub.aclose()
        await client.aclose()


async def _bus(url: str, channel: str) -> AsyncGenerator[str, None]:
    from hub.events.bus import EventBus

    bus = EventBus(url)
    await bus.connect()
    try:
        # A queue as deep as a second of the load: this measures latency, not drops.
        async with bus.subscribe(channel, max_queue=100_000) as subscription:
            yield ""  # subscribed
            async for event in subscription:
                yield event.data
    finally:
        await bus.disconnect()


async def receive(url: str, channel: str, via: str) -> dict[str, float]:
    latencies: list[int] = []
    first = last = 0
    cpu = CpuMeter()
    source = (_raw if via == "raw" else _bus)(url, channel)
    await anext(source)
    print("ready", flush=True)
    cpu.start()
    async for data in source:
        now = time.monotonic_ns()
        payload = json.loads(data)
        if payload.get("end"):
            break
        latencies.append(now - payload["t"])
        first = first or now
        last = now
    await source.aclose()
    spread = percentiles([ms(x) for x in latencies])
    seconds = (last - first) / 1e9
    return {
        "received": len(latencies),
        "per_second": (len(latencies) - 1) / seconds if seconds > 0 else 0.0,
        "cpu": cpu.percent(),
        **spread,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--via", choices=("raw", "bus"), required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(receive(args.url, args.channel, args.via))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
