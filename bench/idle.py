"""Idle visitors: N widget sockets after hello, sending the protocol's JSON ping.

Measures the server's resident memory per connection (growth from a warmed-up
server to N connected, idle sockets, divided by N) and its CPU while idle,
for the hub and for the bare server with the same websocket settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from dataclasses import dataclass, replace

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import clients
from bench.context import Context
from bench.procs import HubSetup, Server, start_bare
from bench.report import relative
from bench.stats import CpuMeter, rss_bytes

NAME = "Idle visitors"
WARMUP_SOCKETS = 20
# Let the servers finish their start-up work for the new sockets before measuring.
SETTLE_SECONDS = 2.0
HEARTBEAT_TICK = 0.1
FD_HEADROOM = 200


@dataclass(frozen=True)
class Sizes:
    connections: int
    ping_interval: float  # the widget's is 25 s; --quick shortens it so its window sees pings
    window: float


FULL = Sizes(connections=10_000, ping_interval=25.0, window=25.0)
QUICK = Sizes(connections=200, ping_interval=2.0, window=4.0)


@dataclass
class Measured:
    per_connection_kib: float
    idle_cpu_percent: float
    generator_cpu_percent: float
    connect_seconds: float
    extensions: str
    pongs: int


async def _drain(ws: ClientConnection, counter: list[int]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            if '"pong"' in text:
                counter[0] += 1


async def _heartbeat(sockets: list[ClientConnection], interval: float) -> None:
    """Each socket sends {"type":"ping"} every `interval` seconds, spread evenly."""
    per_tick = max(1, round(len(sockets) * HEARTBEAT_TICK / interval))
    position = 0
    while True:
        for _ in range(per_tick):
            with contextlib.suppress(ConnectionClosed):
                await sockets[position].send('{"type":"ping"}')
            position = (position + 1) % len(sockets)
        await asyncio.sleep(HEARTBEAT_TICK)


async def measure(server: Server, sizes: Sizes, progress, label: str) -> Measured:  # type: ignore[no-untyped-def]
    async def open_one(_: int) -> ClientConnection:
        ws = await clients.open_widget(server.ws_url)
        await clients.hello(ws)
        return ws

    warm = await clients.gather_limited(range(WARMUP_SOCKETS), open_one)
    await clients.close_all(warm)
    await asyncio.sleep(SETTLE_SECONDS)
    base = rss_bytes(server.pid)
    progress(NAME, f"{label}: opening {sizes.connections:,} widget sockets")
    loop = asyncio.get_running_loop()
    started = loop.time()
    sockets = await clients.gather_limited(range(sizes.connections), open_one)
    connect_seconds = loop.time() - started
    pongs = [0]
    readers = [asyncio.create_task(_drain(ws, pongs)) for ws in sockets]
    beat = asyncio.create_task(_heartbeat(sockets, sizes.ping_interval))
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        progress(NAME, f"{label}: {sizes.connections:,} open, idle for {sizes.window:.0f} s")
        hub_cpu, own_cpu = CpuMeter(server.pid).start(), CpuMeter().start()
        await asyncio.sleep(sizes.window)
        idle_cpu, generator_cpu = hub_cpu.percent(), own_cpu.percent()
        grown = rss_bytes(server.pid) - base
    finally:
        beat.cancel()
        extensions = clients.negotiated_extensions(sockets[0])
        await clients.close_all(sockets)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(beat, *readers, return_exceptions=True)
    return Measured(
        per_connection_kib=grown / sizes.connections / 1024,
        idle_cpu_percent=idle_cpu,
        generator_cpu_percent=generator_cpu,
        connect_seconds=connect_seconds,
        extensions=extensions,
        pongs=pongs[0],
    )


async def run(ctx: Context) -> None:
    sizes = QUICK if ctx.quick else FULL
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < sizes.connections + FD_HEADROOM:
        # Each process (server and generator) needs a descriptor per socket.
        ctx.results.note(NAME, f"only {soft - FD_HEADROOM:,} sockets: open-file limit {soft}")
        sizes = replace(sizes, connections=soft - FD_HEADROOM)
    setup = HubSetup.create(agents=1, root=ctx.work)
    hub_server = await setup.serve()
    try:
        hub = await measure(hub_server, sizes, ctx.progress, "hub")
    finally:
        await hub_server.stop()
    bare_server = await start_bare(ctx.work)
    try:
        bare = await measure(bare_server, sizes, ctx.progress, "bare websockets")
    finally:
        await bare_server.stop()
    size = f"{sizes.connections:,} sockets"
    ctx.results.add(
        relative(
            NAME,
            size,
            "memory per connection",
            hub.per_connection_kib,
            bare.per_connection_kib,
            "KiB",
            at_most=2,
        ),
        relative(
            NAME, size, "server CPU while idle", hub.idle_cpu_percent, bare.idle_cpu_percent, "%"
        ),
        relative(
            NAME,
            size,
            "time to open all (hello → welcome)",
            hub.connect_seconds,
            bare.connect_seconds,
            "s",
        ),
    )
    ctx.results.note(
        NAME,
        f"JSON ping every {sizes.ping_interval:.0f} s per socket (the widget sends one every "
        f"25 s), CPU measured over {sizes.window:.0f} s; pongs received: hub {hub.pongs:,}, "
        f"bare {bare.pongs:,}; generator CPU while idle: hub run "
        f"{hub.generator_cpu_percent:.0f} %, bare run {bare.generator_cpu_percent:.0f} %.",
    )
    ctx.results.note(
        NAME, f"negotiated extensions: hub `{hub.extensions}`, bare `{bare.extensions}`."
    )
    setup.remove()
