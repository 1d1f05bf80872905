"""Live visitors under load: many visitors navigating, a few agents watching.

    python bench/live_visitors.py [--visitors 1000] [--agents 5] [--interval 3] [--seconds 30]

Runs the same load twice, in this order, against servers on loopback:

1. the hub (`hub serve`, SQLite, the live visitors path end to end: widget
   socket -> validation, rate limit, store, presence, event bus -> console sockets);
2. a bare websocket relay that forwards each page frame to every agent socket
   and does nothing else: the floor for this fan-out on this machine.

Each visitor says hello, then sends a `page` frame every `interval` seconds
(jittered). Agents measure the delay from sending a page frame to seeing it on
their socket. Reported: page views per second delivered, p50/p99 delay, the
server's peak memory (VmHWM), and this generator's own CPU time, so a
saturated generator is not mistaken for a slow server. The server runs on
core 0 and the generator on core 1 where `taskset` exists.

Visitors connect from 127.0.0.x source addresses, 16 per address, to stay
under the hub's per-IP socket limit. Every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ports import reserve_port  # noqa: E402 - after the checkout is on the path
from bench.procs import run_on_uvloop  # noqa: E402

ORIGIN = "http://bench.test"
PASSWORD = "bench-password-1234"  # noqa: S105 - throw-away agents of a throw-away hub
VISITORS_PER_ADDRESS = 16
CONNECT_TIMEOUT = 20.0


def pinned(core: int) -> list[str]:
    return (
        ["taskset", "-c", str(core)]
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1
        else []
    )


def peak_memory_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# ---- the baseline: a bare relay ---------------------------------------------------


async def relay(port: int) -> None:
    from websockets.asyncio.server import serve

    agents: set = set()

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        if ws.request.path.startswith("/agent"):
            agents.add(ws)
            try:
                await ws.wait_closed()
            finally:
                agents.discard(ws)
            return
        async for text in ws:
            frame = json.loads(text)
            if frame.get("type") == "page":
                data = json.dumps({"type": "visitor", "page_view": {"url": frame["url"]}})
                for agent in list(agents):
                    try:
                        await agent.send(data)
                    except Exception:  # noqa: S112 - a closed agent: skip it
                        continue
            elif frame.get("type") == "hello":
                await ws.send(json.dumps({"type": "welcome"}))

    async with serve(handler, "127.0.0.1", port, max_size=2**16):
        await asyncio.Future()


# ---- the hub ------------------------------------------------------------------------


async def prepare_hub(data_dir: Path, agents: int) -> str:
    """Migrate, create a website inbox for ORIGIN and the agents; return the site token."""
    from hub.composition.assemble import start_hub
    from hub.models import Role
    from hub.settings import Settings
    from storage.migrate import upgrade_async

    settings = Settings.load(environ=hub_env(data_dir, 0), env_file="/nonexistent")
    await upgrade_async(settings.database_url)
    hub = await start_hub(settings)
    try:
        inbox = await hub.inboxes.create_website("Bench shop", [ORIGIN])
        for n in range(agents):
            await hub.agents.create(f"agent{n}@bench.test", f"Agent {n}", PASSWORD, Role.AGENT)
    finally:
        await hub.stop()
    return inbox.site_token or ""


def hub_env(data_dir: Path, port: int) -> dict[str, str]:
    return {
        "HUB_DATA_DIR": str(data_dir),
        "HUB_SECRET_KEY": "bench-secret-" + "x" * 40,
        "HUB_DEMO": "false",
        "HUB_PORT": str(port),
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # Its mail server on a port of the OS's choosing, not the default 2525
        # that a hub already running on this machine holds.
        "HUB_MAIL_PORT": "0",
    }


async def agent_cookie(base: str, n: int) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base, follow_redirects=False) as client:
        page = await client.get("/console/login")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        await client.post(
            "/console/login",
            data={"email": f"agent{n}@bench.test", "password": PASSWORD, "csrf_token": csrf},
        )
        return client.cookies["hub_session"]


# ---- the load -------------------------------------------------------------------------


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sent: dict[str, float] = {}
        self.delays: list[float] = []
        self.delivered = 0
        self.errors = 0
        self.stop = asyncio.Event()
        self.welcomed = 0
        self.all_welcomed = asyncio.Event()

    async def agent(self, url: str, headers: dict[str, str], ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Origin

        from bench.clients import events_in

        origin = headers.pop("Origin", None)
        async with connect(
            url,
            additional_headers=headers,
            origin=None if origin is None else Origin(origin),
            max_size=None,
        ) as ws:
            ready.set()
            while not self.stop.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue
                now = time.perf_counter()
                for frame in events_in(json.loads(text)):
                    view = frame.get("page_view") if frame.get("type") == "visitor" else None
                    if view and view.get("url") in self.sent:
                        self.delays.append(now - self.sent[view["url"]])
                        self.delivered += 1

    async def visitor(self, n: int, url: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Origin

        address = f"127.0.0.{2 + n // VISITORS_PER_ADDRESS}"
        home = f"{ORIGIN}/v{n}/0"
        async with connect(
            url, origin=Origin(ORIGIN), local_addr=(address, 0), open_timeout=CONNECT_TIMEOUT
        ) as ws:
            await ws.send(
                json.dumps(
                    {"type": "hello", "visitor_token": None, "page": {"url": home, "title": "Home"}}
                )
            )
            await ws.recv()
            self.welcomed += 1
            if self.welcomed == self.args.visitors:
                self.all_welcomed.set()

            async def drain() -> None:
                async for text in ws:
                    if json.loads(text).get("type") == "error":
                        self.errors += 1

            reader = asyncio.create_task(drain())
            await asyncio.sleep(random.uniform(0, self.args.interval))  # noqa: S311
            step = 1
            while not self.stop.is_set():
                page = f"{ORIGIN}/v{n}/{step}"
                self.sent[page] = time.perf_counter()
                await ws.send(json.dumps({"type": "page", "url": page, "title": f"Page {step}"}))
                step += 1
                await asyncio.sleep(self.args.interval * random.uniform(0.8, 1.2))  # noqa: S311
            reader.cancel()

    async def run(self, visitor_url: str, agent_urls: list[tuple[str, dict[str, str]]]) -> dict:
        readies = [asyncio.Event() for _ in agent_urls]
        agents = [
            asyncio.create_task(self.agent(u, h, r))
            for (u, h), r in zip(agent_urls, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), CONNECT_TIMEOUT)
        visitors = []
        for n in range(self.args.visitors):
            visitors.append(asyncio.create_task(self.visitor(n, visitor_url)))
            if n % 50 == 49:
                await asyncio.sleep(0.05)  # ramp up instead of 1,000 handshakes at once
        # Measure the steady state: from when every visitor is connected.
        ramp0 = time.perf_counter()
        await asyncio.wait_for(self.all_welcomed.wait(), 120)
        ramp = time.perf_counter() - ramp0
        # The hub records each hello's page after the welcome; let that backlog
        # and everyone's first page view pass before measuring.
        await asyncio.sleep(self.args.settle)
        self.delays.clear()
        self.delivered = 0
        cpu0 = time.process_time()
        await asyncio.sleep(self.args.seconds)
        window_delivered = self.delivered
        self.stop.set()
        await asyncio.gather(*visitors, *agents, return_exceptions=True)
        cpu = time.process_time() - cpu0
        delays = sorted(self.delays) or [float("nan")]
        return {
            "page_views_per_s": window_delivered / len(agent_urls) / self.args.seconds,
            "p50_ms": 1000 * statistics.median(delays),
            "p99_ms": 1000 * delays[min(len(delays) - 1, int(len(delays) * 0.99))],
            "generator_cpu_s": cpu,
            "ramp_s": ramp,
            "errors": self.errors,
            "connected": sum(1 for t in visitors if not t.cancelled() and t.exception() is None),
        }


async def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


async def bench_hub(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    port = reserve_port()
    site = await prepare_hub(data_dir, args.agents)
    env = {**os.environ, **hub_env(data_dir, port)}
    proc = subprocess.Popen(  # noqa: S603, ASYNC220 - started once, before the load
        [*pinned(0), sys.executable, "-m", "hub", "serve", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        await wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        cookies = [await agent_cookie(base, n) for n in range(args.agents)]
        agents = [
            (f"ws://127.0.0.1:{port}/console/ws", {"Cookie": f"hub_session={c}", "Origin": base})
            for c in cookies
        ]
        result = await Load(args).run(f"ws://127.0.0.1:{port}/widget/ws?site={site}", agents)
        result["server_peak_mb"] = peak_memory_kb(proc.pid) / 1024
        return result
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


async def bench_relay(args: argparse.Namespace) -> dict:
    port = reserve_port()
    proc = subprocess.Popen(  # noqa: S603, ASYNC220 - started once, before the load
        [*pinned(0), sys.executable, __file__, "--serve-relay", str(port)], cwd=ROOT
    )
    try:
        await wait_port(port, proc)
        agents: list[tuple[str, dict[str, str]]] = [
            (f"ws://127.0.0.1:{port}/agent", {}) for _ in range(args.agents)
        ]
        result = await Load(args).run(f"ws://127.0.0.1:{port}/visitor", agents)
        result["server_peak_mb"] = peak_memory_kb(proc.pid) / 1024
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between pages")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds after connecting before measuring"
    )
    parser.add_argument("--serve-relay", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_relay:
        run_on_uvloop(relay(args.serve_relay))
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000+ sockets
    if pinned(1):
        os.sched_setaffinity(0, {1})
    offered = args.visitors / args.interval
    print(
        f"{args.visitors} visitors, a page every ~{args.interval:g} s "
        f"(~{offered:.0f} page views/s offered), {args.agents} agents, {args.seconds:g} s window"
    )
    rows = [
        ("hub", run_on_uvloop(bench_hub(args))),
        ("bare relay", run_on_uvloop(bench_relay(args))),
    ]
    print(
        f"{'server':<11} {'views/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'peak MB':>8} "
        f"{'gen CPU s':>9} {'errors':>6} {'connect s':>9}"
    )
    for name, r in rows:
        print(
            f"{name:<11} {r['page_views_per_s']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['server_peak_mb']:>8.0f} {r['generator_cpu_s']:>9.1f} {r['errors']:>6} "
            f"{r['ramp_s']:>9.1f}"
        )


if __name__ == "__main__":
    main()
