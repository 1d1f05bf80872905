"""Connection storm: K visitors with conversations reconnect at once after a hub restart.

Before the restart each visitor sends `MESSAGES` messages; each then comes
back holding only the first (`last_seq` 1), so its `welcome` must carry every
later message exactly once and in order. Checked against the store itself
(read with `sqlite3` after the hub stopped). Baseline: the bare server
answering the same hellos with a canned welcome of the same shape.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection

from bench import clients
from bench.bare import CANNED_SEQS
from bench.context import Context
from bench.procs import HubSetup, Server, start_bare
from bench.report import Figure
from bench.stats import CpuMeter, cpu_seconds, ms, percentiles

NAME = "Connection storm"
MESSAGES = CANNED_SEQS  # the bare server's canned conversation has as many
RESUME_FROM = 1
FULL_VISITORS = 2_000
QUICK_VISITORS = 100


@dataclass(frozen=True)
class Visitor:
    token: str
    conversation_id: int


@dataclass
class Storm:
    seconds: float
    welcome_ms: dict[str, float]
    welcomes: list[dict]
    failures: int
    generator_cpu: float
    server_cpu_seconds: float


async def _storm(server: Server, tokens: list[str]) -> Storm:
    """Every visitor connects and says hello at the same moment."""
    generator = CpuMeter().start()
    server_cpu = cpu_seconds(server.pid)
    started = time.monotonic_ns()
    sockets: list[ClientConnection] = []

    async def resume(token: str) -> tuple[int, dict]:
        ws = await clients.open_widget(server.ws_url)
        sockets.append(ws)
        welcome = await clients.hello(ws, token, RESUME_FROM)
        return time.monotonic_ns() - started, welcome

    outcomes = await asyncio.gather(*(resume(t) for t in tokens), return_exceptions=True)
    seconds = (time.monotonic_ns() - started) / 1e9
    generator_cpu = generator.percent()
    server_cpu = cpu_seconds(server.pid) - server_cpu
    await clients.close_all(sockets)
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    return Storm(
        seconds,
        percentiles([ms(elapsed) for elapsed, _ in done]),
        [welcome for _, welcome in done],
        len(outcomes) - len(done),
        generator_cpu,
        server_cpu,
    )


async def _prepare(server: Server, count: int) -> list[Visitor]:
    async def chat(index: int) -> Visitor:
        ws = await clients.open_widget(server.ws_url)
        welcome = await clients.hello(ws)
        for k in range(MESSAGES):
            frame = {"type": "message", "client_id": f"s{k}", "text": f"visitor {index} says {k}"}
            await ws.send(json.dumps(frame))
            ack = await clients.recv_type(ws, "ack")
        await ws.close()
        return Visitor(welcome["visitor_token"], ack["conversation_id"])

    return await clients.gather_limited(range(count), chat)


def _check_against_store(
    database: str, visitors: list[Visitor], welcomes: list[dict]
) -> tuple[int, int, int]:
    """(messages lost, duplicated, out of order) across all welcomes, against the store."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        lost = duplicated = disordered = 0
        by_conversation = {w["conversation"]["id"]: w for w in welcomes if w.get("conversation")}
        for visitor in visitors:
            stored = [
                tuple(row)
                for row in db.execute(
                    "SELECT seq, text FROM messages WHERE conversation_id = ? AND seq > ? "
                    "AND kind = 'text' ORDER BY seq",
                    (visitor.conversation_id, RESUME_FROM),
                )
            ]
            welcome = by_conversation.get(visitor.conversation_id)
            got = [(m["seq"], m["text"]) for m in welcome["messages"]] if welcome else []
            if len(stored) != MESSAGES - RESUME_FROM:
                raise RuntimeError(f"store holds {stored} for {visitor}; the setup went wrong")
            lost += len(set(stored) - set(got))
            duplicated += len(got) - len(set(got))
            disordered += got != sorted(got)
        return lost, duplicated, disordered
    finally:
        db.close()


def _check_canned(welcomes: list[dict]) -> tuple[int, int, int]:
    expected = list(range(RESUME_FROM + 1, CANNED_SEQS + 1))
    lost = duplicated = disordered = 0
    for welcome in welcomes:
        seqs = [m["seq"] for m in welcome["messages"]]
        lost += len(set(expected) - set(seqs))
        duplicated += len(seqs) - len(set(seqs))
        disordered += seqs != sorted(seqs)
    return lost, duplicated, disordered


async def run(ctx: Context) -> None:
    count = QUICK_VISITORS if ctx.quick else FULL_VISITORS
    setup = HubSetup.create(agents=1, root=ctx.work)
    server = await setup.serve()
    try:
        ctx.progress(NAME, f"hub: {count:,} visitors each send {MESSAGES} messages")
        visitors = await _prepare(server, count)
        ctx.progress(NAME, "hub: restarting")
        await server.stop()
        server = await setup.serve()
        ctx.progress(NAME, f"hub: {count:,} visitors reconnect at once")
        hub = await _storm(server, [v.token for v in visitors])
    finally:
        await server.stop()
    hub_check = _check_against_store(str(setup.database), visitors, hub.welcomes)
    setup.remove()
    bare_server = await start_bare(ctx.work)
    try:
        ctx.progress(NAME, f"bare websockets: {count:,} visitors connect at once")
        bare = await _storm(bare_server, ["t" * 120] * count)
    finally:
        await bare_server.stop()
    bare_check = _check_canned(bare.welcomes)
    size = f"{count:,} visitors"
    hub_errors = sum(hub_check) + hub.failures
    ctx.results.add(
        Figure(
            NAME, size, "time until every visitor has its welcome", hub.seconds, bare.seconds, "s"
        ),
        Figure(
            NAME, size, "welcome latency p99", hub.welcome_ms["p99"], bare.welcome_ms["p99"], "ms"
        ),
        Figure(
            NAME,
            size,
            "server CPU time from the first connect to the last welcome",
            hub.server_cpu_seconds,
            bare.server_cpu_seconds,
            "s",
        ),
        Figure(
            NAME,
            size,
            "messages lost, duplicated or out of order; failed reconnects",
            hub_errors,
            sum(bare_check) + bare.failures,
            "",
            "0",
            hub_errors == 0,
        ),
    )
    ctx.results.note(
        NAME,
        f"each visitor resumes from seq {RESUME_FROM} of {MESSAGES}; hub: lost {hub_check[0]}, "
        f"duplicated {hub_check[1]}, out of order {hub_check[2]}, failed reconnects "
        f"{hub.failures} (checked against the store); welcome p50 hub "
        f"{hub.welcome_ms['p50']:.0f} ms, bare {bare.welcome_ms['p50']:.0f} ms; max hub "
        f"{hub.welcome_ms['max']:.0f} ms, bare {bare.welcome_ms['max']:.0f} ms; generator "
        f"CPU in the storm: hub run {hub.generator_cpu:.0f} %, bare {bare.generator_cpu:.0f} %.",
    )
