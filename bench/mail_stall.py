"""Mail stall: a widget ping's round trip while mail built to stall a parser
arrives over SMTP at the per-sender limit, against the same pings with no mail,
in the same run on the same `hub serve` (web, widget and SMTP in one process).

The hostile mix alternates 20,000 nested `<div>`s (read and sanitized in a
worker process, flattened at 512 levels, stored as a ticket) and 12,000 or
16,000 empty MIME parts (refused by the pre-scan with 554 before any parse):
the messages that stalled every websocket for seconds when they were parsed on
the event loop. They are sent by `bench.raw_smtp`, encoded once, so that the
generator's loop, which also times the pongs, spends one write on each. One
sender address offers them over several connections as fast as
the hub accepts; the hub's per-sender limit (`HUB_MAIL_MESSAGES_PER_MINUTE`,
left at its default) answers the rest 451, and the sender retries as an MTA
would. The hub and its mail readers share the server core.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time

from bench import email_ingest
from bench.clients import hello, open_widget
from bench.context import Context
from bench.hostile_mail import empty_parts, nested_divs
from bench.procs import HubSetup, free_port
from bench.raw_smtp import RawSmtp, SmtpReply, encode_for_data
from bench.report import Figure, relative
from bench.stats import CpuMeter, ms, percentiles

NAME = "Mail stall"
WIDGETS = 10
PING_INTERVAL = 0.05  # each widget: 20 pings a second
FULL_SECONDS = 20.0
QUICK_SECONDS = 6.0
SMTP_CONNECTIONS = 4
SENDER = "mallory@attacker.test"
P99_LIMIT_MS = 50.0


def hostile_mix() -> list[bytes]:
    to = email_ingest.INBOX
    return [
        nested_divs(20_000, sender=SENDER, to=to),
        empty_parts(12_000, sender=SENDER, to=to),
        nested_divs(20_000, sender=SENDER, to=to),
        empty_parts(16_000, sender=SENDER, to=to),
    ]


async def _ping_loop(ws, rtts: list[float], stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        t0 = time.monotonic_ns()
        await ws.send('{"type":"ping"}')
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "pong":
                break
        rtts.append(ms(time.monotonic_ns() - t0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PING_INTERVAL)


async def _pings(ws_url: str, seconds: float, during=None) -> dict:  # type: ignore[no-untyped-def]
    """Ping round trips of WIDGETS sockets for `seconds`, while `during` (a
    coroutine function taking the stop event) runs, if given."""
    sockets = [await open_widget(ws_url) for _ in range(WIDGETS)]
    try:
        for ws in sockets:
            await hello(ws)
        rtts: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_ping_loop(ws, rtts, stop)) for ws in sockets]
        side = asyncio.create_task(during(stop)) if during else None
        started = time.monotonic()
        await asyncio.sleep(seconds)  # the measuring window itself
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        extra = await side if side else {}
        return {"pings": len(rtts), "per_second": len(rtts) / elapsed, **percentiles(rtts), **extra}
    finally:
        for ws in sockets:
            await ws.close()


def _sender(port: int, counts: dict[str, int]):  # type: ignore[no-untyped-def]
    mix = [encode_for_data(raw) for raw in hostile_mix()]  # encoded once, sent many times
    order = itertools.count()

    async def connection(stop: asyncio.Event) -> None:
        smtp = await RawSmtp.connect("127.0.0.1", port)
        try:
            while not stop.is_set():
                try:
                    await smtp.send(SENDER, email_ingest.INBOX, mix[next(order) % len(mix)])
                    counts["stored"] += 1
                except SmtpReply as exc:
                    if exc.code == 451:  # the per-sender limit: retry later, as an MTA does
                        counts["deferred"] += 1
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 1.0)
                    else:
                        counts["refused"] += 1
        finally:
            await smtp.quit()

    async def run(stop: asyncio.Event) -> dict:
        await asyncio.gather(*(connection(stop) for _ in range(SMTP_CONNECTIONS)))
        return {}

    return run


async def _wait_smtp(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # the mail listener starts just after the web one


async def run(ctx: Context) -> None:
    seconds = QUICK_SECONDS if ctx.quick else FULL_SECONDS
    mail_port = free_port()
    setup = await asyncio.to_thread(
        HubSetup.create, 1, ctx.work, HUB_MAIL_PORT=str(mail_port), HUB_MAIL_HOSTNAME="bench.test"
    )
    try:
        await asyncio.to_thread(email_ingest._worker, ["seed", "-"], setup.env)
        server = await setup.serve()
        try:
            await _wait_smtp(mail_port)
            ctx.progress(NAME, f"no mail: {WIDGETS} widgets pinging for {seconds:.0f} s")
            quiet = await _pings(server.ws_url, seconds)
            ctx.progress(NAME, f"hostile mail at the per-sender limit, {seconds:.0f} s")
            counts = {"stored": 0, "refused": 0, "deferred": 0}
            meter = CpuMeter(server.pid).start()
            hostile = await _pings(server.ws_url, seconds, _sender(mail_port, counts))
            hub_cpu = meter.percent()
        finally:
            await server.stop()
    finally:
        setup.remove()
    size = f"{WIDGETS} widgets, {seconds:.0f} s"
    p99 = Figure(NAME, size, "ping → pong p99 with hostile mail", hostile["p99"], None, "ms")
    p99.target, p99.met = f"< {P99_LIMIT_MS:g} ms", hostile["p99"] < P99_LIMIT_MS
    ctx.results.add(
        relative(
            NAME,
            size,
            "ping → pong p99, hostile mail vs no mail",
            hostile["p99"],
            quiet["p99"],
            "ms",
            at_most=2,
        ),
        p99,
        Figure(
            NAME,
            size,
            "ping → pong p50, hostile mail vs no mail",
            hostile["p50"],
            quiet["p50"],
            "ms",
        ),
        Figure(
            NAME,
            size,
            "pings answered per second, hostile mail vs no mail",
            hostile["per_second"],
            quiet["per_second"],
            "/s",
        ),
    )
    ctx.results.note(
        NAME,
        f"hostile mail from one sender over {SMTP_CONNECTIONS} connections: "
        f"{counts['stored']} read and stored, {counts['refused']} refused (554), "
        f"{counts['deferred']} deferred by the per-sender limit (451); max ping "
        f"{hostile['max']:.1f} ms with mail, {quiet['max']:.1f} ms without; the hub's "
        f"process used {hub_cpu:.0f} % of a core, its mail readers run beside it on the "
        "same core at lower priority.",
    )
