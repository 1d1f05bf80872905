"""Cross-node: what running several hub nodes behind Redis adds to delivery.

Two parts, each against its baseline in the same run:

1. Hub end to end. Two `hub serve` nodes share a fresh PostgreSQL database and
   Redis. Visitors are split over node A and node B, and one agent console is
   open on each node; every message reaches both consoles, one on the sender's
   node (same-node delivery, the baseline) and one on the other (cross-node).
   The same messages give both figures, so the difference is what crossing
   nodes adds. The offered rate rises in steps as in the chat load; then the
   same steps run against one node holding every socket, for total messages
   per second with one node against two.
2. The bus alone, at the issue's 5,000 messages per second (the store cannot
   take that rate on this machine): the hub's `EventBus` with its Redis backend
   publishing in this process and subscribed in another (bench.buspeer),
   against a bare redis-py publish/subscribe loop doing the same. Payloads
   carry the send time; the subscriber measures on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import clients, latency
from bench.chatload import DRAIN_SECONDS, Step, Visitors
from bench.context import Context
from bench.procs import ROOT, HubSetup, Server, agent_email, pinned
from bench.report import Figure
from bench.stats import CpuMeter, ms, percentiles

NAME = "Cross-node"
TARGET_PER_SECOND = 5_000
ADDED_P50_LIMIT_MS = 2.0
ADDED_P99_LIMIT_MS = 10.0
POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Publishes in flight at once in the bus runs (both of them): enough to keep
# 5,000 a second going over loopback, a cap for the flat-out run, and under
# redis-py's default pool of 100 connections (it raises beyond that, not waits).
PUBLISH_WINDOW = 64
PUBLISH_TICK = 0.001
PEER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sizes:
    visitors: int  # split evenly over the nodes
    rates: tuple[int, ...]  # offered messages per second to the hub, one step each
    step_seconds: float
    bus_seconds: float  # at TARGET_PER_SECOND
    flood_messages: int  # the bus flat out


FULL = Sizes(100, (10, 25, 50, 100, 200, 400), 4.0, 5.0, 30_000)
QUICK = Sizes(10, (20, 40), 2.0, 1.0, 3_000)


@dataclass
class Consoles:
    """Console deliveries by where the sender sat: `event % nodes` is the sender's node."""

    nodes: int
    same: list[int] = field(default_factory=list)
    cross: list[int] = field(default_factory=list)

    def reader(self, node: int):  # type: ignore[no-untyped-def]
        async def read(ws: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for frame in ws:
                    assert isinstance(frame, str)  # the hub sends text frames only
                    if not frame.startswith(('{"type":"message"', '{"type":"batch"')):
                        continue
                    now = time.monotonic_ns()
                    for event, sent in latency.parse_all(frame):
                        target = self.same if event % self.nodes == node else self.cross
                        target.append(now - sent)

        return read

    @property
    def total(self) -> int:
        return len(self.same) + len(self.cross)


@dataclass
class NodeStep:
    step: Step
    same: dict[str, float]
    cross: dict[str, float]
    nodes_cpu: float


async def _postgres_database() -> str | None:
    """A fresh database for the cluster (its asyncpg URL), or None if PostgreSQL is not there."""
    import asyncpg

    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"hub_bench_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def _drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _redis_reachable() -> bool:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
        return True
    except (OSError, redis.RedisError):
        return False
    finally:
        await client.aclose()


async def _steps(ctx: Context, servers: list[Server], sizes: Sizes, label: str) -> list[NodeStep]:
    """The offered-rate steps with visitors and one console on each of `servers`."""
    nodes = len(servers)
    tasks: list[asyncio.Task] = []
    sockets: list[ClientConnection] = []
    consoles = Consoles(nodes)  # one node: every delivery is same-node
    try:
        for index in range(2):  # two consoles either way: the same delivery work
            server = servers[index % nodes]
            cookie = await clients.log_in(server.url, agent_email(index))
            ws = await clients.open_console(server.ws_url, server.url, cookie)
            sockets.append(ws)
            tasks.append(asyncio.create_task(consoles.reader(index % nodes)(ws)))
        ctx.progress(NAME, f"{label}: opening {sizes.visitors} visitors, each with a conversation")

        async def open_visitor(index: int) -> ClientConnection:
            ws = await clients.open_widget(servers[index % nodes].ws_url)
            await clients.hello(ws)
            await ws.send(json.dumps({"type": "message", "client_id": "open", "text": "hi"}))
            await clients.recv_type(ws, "ack")
            return ws

        widgets = await clients.gather_limited(range(sizes.visitors), open_visitor)
        sockets += widgets
        groups = [Visitors(widgets[n::nodes]) for n in range(nodes)]
        tasks += [asyncio.create_task(g.read(ws)) for g in groups for ws in g.sockets]
        await asyncio.sleep(1.0)  # let the consoles take in the opening messages
        steps = []
        for number, offered in enumerate(sizes.rates, start=1):
            ctx.progress(
                NAME, f"{label}: offering {offered:,} messages/s for {sizes.step_seconds:.0f} s"
            )
            step = await _step(servers, groups, consoles, offered, number, sizes.step_seconds)
            steps.append(step)
            if not step.step.passed:
                break
        return steps
    finally:
        await clients.close_all(sockets)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _step(
    servers: list[Server],
    groups: list[Visitors],
    consoles: Consoles,
    offered: int,
    number: int,
    seconds: float,
) -> NodeStep:
    nodes = len(servers)
    first_same, first_cross, first_total = len(consoles.same), len(consoles.cross), consoles.total
    first_acks = [len(g.ack_ns) for g in groups]
    errors = sum(g.errors for g in groups)
    generator = CpuMeter().start()
    meters = [CpuMeter(s.pid).start() for s in servers]
    started = time.monotonic_ns()
    until = asyncio.get_running_loop().time() + seconds
    per_visitor = offered / sum(len(g.sockets) for g in groups)
    await asyncio.gather(
        *(
            g.talk(i, per_visitor, number * nodes + n, until)
            for n, g in enumerate(groups)
            for i in range(len(g.sockets))
        )
    )
    for g in groups:
        await g.wait_drained(DRAIN_SECONDS)
    acked = sum(len(g.ack_ns) - first for g, first in zip(groups, first_acks, strict=True))
    expected = 2 * acked
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while True:
                if consoles.total - first_total >= expected:
                    break
                await asyncio.sleep(0.05)  # deliveries come one frame at a time; poll
    ack_ns = [x for g, first in zip(groups, first_acks, strict=True) for x in g.ack_ns[first:]]
    last_ack = max(g.last_ack for g in groups)
    step = Step(offered, generator_cpu=generator.percent())
    step.hub_cpu = sum(m.percent() for m in meters)
    step.acked_per_second = acked / max(seconds, (last_ack - started) / 1e9)
    step.ack = percentiles([ms(x) for x in ack_ns])
    step.console = percentiles(
        [ms(x) for x in consoles.same[first_same:] + consoles.cross[first_cross:]]
    )
    step.console_share = (consoles.total - first_total) / expected if expected else 0.0
    step.unacked = sum(len(g.pending) for g in groups)
    step.errors = sum(g.errors for g in groups) - errors
    for g in groups:
        g.pending.clear()
    return NodeStep(
        step,
        percentiles([ms(x) for x in consoles.same[first_same:]]),
        percentiles([ms(x) for x in consoles.cross[first_cross:]]),
        step.hub_cpu,
    )


async def _hub(ctx: Context, sizes: Sizes, database_url: str) -> tuple[list, list]:
    prefix = f"hub-bench-{secrets.token_hex(4)}:"
    setup = await asyncio.to_thread(
        HubSetup.create,
        2,
        ctx.work,
        HUB_DATABASE_URL=database_url,
        HUB_REDIS_URL=f"{REDIS_URL}?prefix={prefix}",
    )
    try:
        node_a = await setup.serve()
        try:
            node_b = await setup.serve()
            try:
                two = await _steps(ctx, [node_a, node_b], sizes, "two nodes")
            finally:
                await node_b.stop()
        finally:
            await node_a.stop()
        # The embedded default's bus: one node needs no Redis.
        del setup.env["HUB_REDIS_URL"]
        alone = await setup.serve()
        try:
            one = await _steps(ctx, [alone], sizes, "one node, in-memory bus")
        finally:
            await alone.stop()
    finally:
        setup.remove()
    return two, one


# --- the bus alone ---------------------------------------------------------------


async def _peer(channel: str, via: str) -> asyncio.subprocess.Process:
    """The subscriber process, once it has subscribed."""
    argv = [sys.executable, "-m", "bench.buspeer", "--url", _bus_url(), "--channel", channel]
    process = await asyncio.create_subprocess_exec(
        *pinned([*argv, "--via", via]), stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), PEER_TIMEOUT)
    if line.strip() != b"ready":
        process.kill()
        raise RuntimeError(f"bench.buspeer did not start: {line!r}")
    return process


_PREFIX = f"hub-bench-{secrets.token_hex(4)}:"


def _bus_url() -> str:
    return f"{REDIS_URL}?prefix={_PREFIX}"


class _Publisher:
    """Publishes `{"t": now}` to one channel: with redis-py itself, or through EventBus."""

    def __init__(self, via: str, channel: str) -> None:
        self.via = via
        self.channel = channel

    async def __aenter__(self) -> _Publisher:
        if self.via == "raw":
            import redis.asyncio as redis

            self._client = redis.from_url(REDIS_URL)
            name = _PREFIX + self.channel

            async def send(payload: dict) -> None:
                await self._client.publish(name, json.dumps(payload, separators=(",", ":")))

        else:
            from hub.events.bus import EventBus

            self._bus = EventBus(_bus_url())
            await self._bus.connect()

            async def send(payload: dict) -> None:
                await self._bus.publish(self.channel, payload)

        self.send = send
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.via == "raw":
            await self._client.aclose()
        else:
            await self._bus.disconnect()

    async def run(self, rate: float, count: int) -> None:
        """`count` messages at `rate` per second, sent in ticks of PUBLISH_TICK."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while sent < count:
            due = min(count, int((loop.time() - start) * rate) + 1) - sent
            due = min(due, PUBLISH_WINDOW)
            if due > 0:
                await asyncio.gather(
                    *(self.send({"t": time.monotonic_ns(), "pad": "x" * 200}) for _ in range(due))
                )
                sent += due
            await asyncio.sleep(PUBLISH_TICK)
        await self.send({"end": True})


async def _bus_run(via: str, rate: float, count: int) -> dict[str, float]:
    channel = f"bench-{via}-{secrets.token_hex(3)}"
    process = await _peer(channel, via)
    try:
        generator = CpuMeter().start()
        async with _Publisher(via, channel) as publisher:
            await publisher.run(rate, count)
        output, _ = await asyncio.wait_for(process.communicate(), PEER_TIMEOUT)
        result = json.loads(output)
        result["generator_cpu"] = generator.percent()
        result["sent"] = count
        return result
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _bus(ctx: Context, sizes: Sizes) -> dict[str, dict[str, float]]:
    runs: dict[str, dict[str, float]] = {}
    count = int(TARGET_PER_SECOND * sizes.bus_seconds)
    for via in ("raw", "bus"):
        label = "raw redis-py" if via == "raw" else "hub EventBus"
        ctx.progress(
            NAME, f"{label}: {TARGET_PER_SECOND:,} messages/s for {sizes.bus_seconds:.0f} s"
        )
        runs[via] = await _bus_run(via, TARGET_PER_SECOND, count)
        ctx.progress(NAME, f"{label}: {sizes.flood_messages:,} messages flat out")
        runs[via + "-flood"] = await _bus_run(via, 1e9, sizes.flood_messages)
    return runs


# --- figures ---------------------------------------------------------------------


def _best(steps: list[NodeStep]) -> NodeStep | None:
    passing = [s for s in steps if s.step.passed]
    return passing[-1] if passing else (steps[0] if steps else None)


def _report_hub(ctx: Context, sizes: Sizes, two: list[NodeStep], one: list[NodeStep]) -> None:
    size = f"2 nodes, {sizes.visitors} visitors, 2 consoles"
    at = _best(two)
    if at is not None:
        rate = f"{at.step.offered:,} msg/s"
        added50 = at.cross["p50"] - at.same["p50"]
        added99 = at.cross["p99"] - at.same["p99"]
        ctx.results.add(
            Figure(
                NAME,
                size,
                f"console p50, other node vs same node, at {rate}",
                at.cross["p50"],
                at.same["p50"],
                "ms",
            ),
            Figure(
                NAME,
                size,
                f"console p99, other node vs same node, at {rate}",
                at.cross["p99"],
                at.same["p99"],
                "ms",
            ),
            Figure(
                NAME,
                size,
                f"p50 added by crossing nodes at {rate}",
                added50,
                None,
                "ms",
                f"≤ {ADDED_P50_LIMIT_MS:g} ms",
                added50 <= ADDED_P50_LIMIT_MS,
            ),
            Figure(
                NAME,
                size,
                f"p99 added by crossing nodes at {rate}",
                added99,
                None,
                "ms",
                f"≤ {ADDED_P99_LIMIT_MS:g} ms",
                added99 <= ADDED_P99_LIMIT_MS,
            ),
        )
    same_rate = next((s for s in one if at is not None and s.step.offered == at.step.offered), None)
    if at is not None and same_rate is not None:
        ctx.results.add(
            Figure(
                NAME,
                size,
                f"console p50, other node vs one node with in-memory bus, at {rate}",
                at.cross["p50"],
                same_rate.step.console["p50"],
                "ms",
            ),
            Figure(
                NAME,
                size,
                f"console p99, other node vs one node with in-memory bus, at {rate}",
                at.cross["p99"],
                same_rate.step.console["p99"],
                "ms",
            ),
        )
    sustained_two = max((s.step.acked_per_second for s in two if s.step.passed), default=0.0)
    sustained_one = max((s.step.acked_per_second for s in one if s.step.passed), default=0.0)
    ctx.results.add(
        Figure(
            NAME,
            size,
            "sustained msg/s (ack p99 < 100 ms), two nodes vs one node (in-memory bus)",
            sustained_two,
            sustained_one,
            "/s",
            f"≥ {TARGET_PER_SECOND:,} /s",
            sustained_two >= TARGET_PER_SECOND,
        )
    )
    for label, steps in (("two nodes", two), ("one node, in-memory bus", one)):
        for s in steps:
            st = s.step
            where = (
                f"same-node p50 {s.same['p50']:.1f} ms, p99 {s.same['p99']:.1f} ms; "
                f"cross-node p50 {s.cross['p50']:.1f} ms, p99 {s.cross['p99']:.1f} ms"
                if label == "two nodes"
                else f"console p50 {st.console['p50']:.1f} ms, p99 {st.console['p99']:.1f} ms"
            )
            ctx.results.note(
                NAME,
                f"{label}, {st.offered:,}/s offered: {st.acked_per_second:,.0f}/s acked; ack p50 "
                f"{st.ack['p50']:.1f} ms, p99 {st.ack['p99']:.1f} ms; {where}; "
                f"{100 * st.console_share:.1f} % of the expected deliveries; errors {st.errors}; "
                f"hub CPU (all nodes) {st.hub_cpu:.0f} %, generator CPU {st.generator_cpu:.0f} %"
                f"{' (saturated)' if st.generator_cpu > 90 else ''}; "
                f"{'passed' if st.passed else 'failed'}.",
            )


def _report_bus(ctx: Context, sizes: Sizes, runs: dict[str, dict[str, float]]) -> None:
    size = f"bus alone, 2 processes, {sizes.bus_seconds:g} s"
    raw, bus = runs["raw"], runs["bus"]
    rate = f"{TARGET_PER_SECOND:,} msg/s"
    added50, added99 = bus["p50"] - raw["p50"], bus["p99"] - raw["p99"]
    delivered = bus["received"] / bus["sent"]
    ctx.results.add(
        Figure(
            NAME,
            size,
            f"EventBus (Redis) p50 at {rate} vs raw redis-py pub/sub",
            bus["p50"],
            raw["p50"],
            "ms",
        ),
        Figure(
            NAME,
            size,
            f"EventBus (Redis) p99 at {rate} vs raw redis-py pub/sub",
            bus["p99"],
            raw["p99"],
            "ms",
        ),
        Figure(
            NAME,
            size,
            f"p50 added by the hub's bus at {rate}",
            added50,
            None,
            "ms",
            f"≤ {ADDED_P50_LIMIT_MS:g} ms",
            added50 <= ADDED_P50_LIMIT_MS,
        ),
        Figure(
            NAME,
            size,
            f"p99 added by the hub's bus at {rate}",
            added99,
            None,
            "ms",
            f"≤ {ADDED_P99_LIMIT_MS:g} ms",
            added99 <= ADDED_P99_LIMIT_MS,
        ),
        Figure(
            NAME,
            size,
            f"delivered msg/s at {rate} offered vs raw",
            bus["per_second"],
            raw["per_second"],
            "/s",
            "all delivered",
            delivered >= 1.0,
        ),
        Figure(
            NAME,
            f"bus alone, {sizes.flood_messages:,} messages",
            "msg/s with the publisher flat out vs raw",
            runs["bus-flood"]["per_second"],
            runs["raw-flood"]["per_second"],
            "/s",
        ),
    )
    for via, label in (("raw", "raw redis-py"), ("bus", "hub EventBus")):
        for suffix, what in (("", f"at {rate}"), ("-flood", "flat out")):
            r = runs[via + suffix]
            ctx.results.note(
                NAME,
                f"{label} {what}: received {r['received']:,.0f} of {r['sent']:,.0f} at "
                f"{r['per_second']:,.0f}/s; p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max "
                f"{r['max']:.1f} ms; subscriber CPU {r['cpu']:.0f} %, generator (publisher) CPU "
                f"{r['generator_cpu']:.0f} %{' (saturated)' if r['generator_cpu'] > 90 else ''}.",
            )


async def run(ctx: Context) -> None:
    sizes = QUICK if ctx.quick else FULL
    if not await _redis_reachable():
        ctx.results.note(NAME, f"skipped: Redis not reachable at {REDIS_URL}")
        return
    runs = await _bus(ctx, sizes)
    _report_bus(ctx, sizes, runs)
    database_url = await _postgres_database()
    if database_url is None:
        ctx.results.note(
            NAME, f"hub part skipped: PostgreSQL not reachable at {POSTGRES_ADMIN_URL}"
        )
        return
    try:
        two, one = await _hub(ctx, sizes, database_url)
    finally:
        await _drop_database(database_url)
    _report_hub(ctx, sizes, two, one)
    ctx.results.note(
        NAME,
        "both hub nodes, the bus subscriber and the baselines' subscriber run pinned to core 0 "
        "(this machine has 2 cores; the generator has the other), so two nodes share one core: "
        "the two-node throughput shows the cost of the extra hop, not scale-out. Redis and "
        "PostgreSQL are the machine's own servers, not pinned.",
    )
