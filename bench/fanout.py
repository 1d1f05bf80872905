"""Fan-out: one event to N subscribed consoles, for the hub and for `websockets.broadcast`.

Hub: N console sockets logged in as one agent (one session cookie, many
sockets); a visitor's message sent over a widget socket is stored and its
`message` event reaches every console. Bare: N sockets on the bare server;
a trigger socket's frame, padded to the size of the hub's frame, goes out
with `websockets.broadcast`. Both are read by the same client code. Events go
one at a time: the next is sent when every subscriber has the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import clients, latency
from bench.context import Context
from bench.procs import HubSetup, Server, agent_email, start_bare
from bench.report import relative
from bench.stats import CpuMeter, ms, percentiles

NAME = "Fan-out"
EVENT_TIMEOUT = 15.0
SETTLE_SECONDS = 1.0

# (subscribers, events sent one after another)
FULL = ((100, 50), (1_000, 20), (5_000, 10))
QUICK = ((50, 10), (100, 10))


@dataclass
class SizeResult:
    subscribers: int
    deliveries_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int
    closed: int
    generator_cpu: float
    server_cpu: float


@dataclass
class Target:
    server: Server
    subscribe: Callable[[], Awaitable[ClientConnection]]
    trigger: ClientConnection
    send: Callable[[int], Awaitable[None]]


async def _listen(ws: ClientConnection, deliveries: latency.Deliveries, closed: list[int]) -> None:
    try:
        async for frame in ws:
            assert isinstance(frame, str)  # the hub sends text frames only
            deliveries.receive(frame)
    except ConnectionClosed:
        pass
    closed[0] += 1


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def measure(target: Target, sizes, deliveries, progress, label) -> list[SizeResult]:  # type: ignore[no-untyped-def]
    sockets: list[ClientConnection] = []
    tasks = [asyncio.create_task(_drain(target.trigger))]
    closed = [0]
    results = []
    event = 0
    try:
        for subscribers, events in sizes:
            progress(NAME, f"{label}: {subscribers:,} subscribers, {events} events")
            more = await clients.gather_limited(
                range(subscribers - len(sockets)), lambda _: target.subscribe()
            )
            sockets += more
            tasks += [asyncio.create_task(_listen(ws, deliveries, closed)) for ws in more]
            await asyncio.sleep(SETTLE_SECONDS)
            # One warm-up event, not counted: the new sockets' first frames (and
            # the hub's first use of a code path) are not what is measured.
            event += 1
            await target.send(event)
            await deliveries.wait(event, subscribers, EVENT_TIMEOUT)
            first = len(deliveries.latencies_ns)
            generator, server = CpuMeter().start(), CpuMeter(target.server.pid).start()
            busy_ns = missing = sent_events = 0
            for _ in range(events):
                event += 1
                sent_events += 1
                sent = time.monotonic_ns()
                await target.send(event)
                complete = await deliveries.wait(event, subscribers, EVENT_TIMEOUT)
                busy_ns += deliveries.last_ns.get(event, time.monotonic_ns()) - sent
                missing += subscribers - deliveries.counts[event]
                if not complete:
                    break  # subscribers are gone or stuck; waiting again would only stall
            spread = percentiles([ms(x) for x in deliveries.latencies_ns[first:]])
            results.append(
                SizeResult(
                    subscribers,
                    (subscribers * sent_events - missing) / (busy_ns / 1e9),
                    spread["p50"],
                    spread["p99"],
                    spread["max"],
                    missing,
                    closed[0],
                    generator.percent(),
                    server.percent(),
                )
            )
    finally:
        await clients.close_all([*sockets, target.trigger])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results


async def _hub_target(server: Server) -> Target:
    cookie = await clients.log_in(server.url, agent_email(0))
    trigger = await clients.open_widget(server.ws_url)
    await clients.hello(trigger)
    # Open the conversation now, so that the measured events are plain messages.
    await trigger.send(json.dumps({"type": "message", "client_id": "open", "text": "hello"}))
    await clients.recv_type(trigger, "ack")

    async def send(event: int) -> None:
        frame = {"type": "message", "client_id": f"f{event}", "text": latency.text(event)}
        await trigger.send(json.dumps(frame))

    return Target(
        server, lambda: clients.open_console(server.ws_url, server.url, cookie), trigger, send
    )


async def _bare_target(server: Server, frame_length: int) -> Target:
    trigger = await clients.open_plain(f"{server.ws_url}/trigger")

    async def send(event: int) -> None:
        body = {"type": "message", "message": {"text": latency.text(event)}, "pad": ""}
        frame = json.dumps(body, separators=(",", ":"))
        await trigger.send(frame[:-2] + "x" * max(0, frame_length - len(frame)) + '"}')

    return Target(
        server, lambda: clients.open_console(server.ws_url, server.url, None), trigger, send
    )


async def run(ctx: Context) -> None:
    sizes = QUICK if ctx.quick else FULL
    setup = HubSetup.create(agents=1, root=ctx.work)
    hub_server = await setup.serve()
    hub_deliveries = latency.Deliveries()
    try:
        hub = await measure(
            await _hub_target(hub_server), sizes, hub_deliveries, ctx.progress, "hub"
        )
    finally:
        await hub_server.stop()
    setup.remove()
    bare_server = await start_bare(ctx.work)
    try:
        target = await _bare_target(bare_server, hub_deliveries.frame_length)
        bare = await measure(target, sizes, latency.Deliveries(), ctx.progress, "bare broadcast")
    finally:
        await bare_server.stop()
    for h, b in zip(hub, bare, strict=True):
        size = f"{h.subscribers:,} consoles"
        ctx.results.add(
            relative(
                NAME,
                size,
                "deliveries per second",
                h.deliveries_per_second,
                b.deliveries_per_second,
                "/s",
                at_least=0.5,
            ),
            relative(NAME, size, "p99 latency", h.p99_ms, b.p99_ms, "ms", at_most=2),
            relative(NAME, size, "p50 latency", h.p50_ms, b.p50_ms, "ms"),
        )
        ctx.results.note(
            NAME,
            f"{h.subscribers:,}: max latency hub {h.max_ms:.1f} ms, bare {b.max_ms:.1f} ms; "
            f"missing deliveries hub {h.missing}, bare {b.missing}; sockets closed by the "
            f"server hub {h.closed}, bare {b.closed}; server CPU hub {h.server_cpu:.0f} %, "
            f"bare {b.server_cpu:.0f} %; generator CPU hub run {h.generator_cpu:.0f} %, "
            f"bare run {b.generator_cpu:.0f} %.",
        )
    ctx.results.note(NAME, f"frame size: {hub_deliveries.frame_length} bytes (bare padded to it).")
