"""Hub processes for multi-node tests: `hub serve` in a subprocess on a free port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.ports import release_port, reserve_port
from tests.servers import unavailable

# Start-up takes a second or two; far longer means it is not going to start.
START_TIMEOUT = 30.0
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Node:
    process: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye frames, as when a machine dies."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)


def hub_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # `hub serve` also receives mail, by default on 127.0.0.1:2525: a port of the
    # OS's choosing instead, so that nodes (of this test, of others running
    # meanwhile, a developer's `make run`) do not compete for that one.
    env.update(
        {"HUB_DATA_DIR": str(tmp_path), "HUB_DEMO": "false", "HUB_MAIL_PORT": "0", **settings}
    )
    return env


@asynccontextmanager
async def hub_node(env: dict[str, str]) -> AsyncIterator[Node]:
    """A `hub serve` process; yields once it listens, stops (or is killed) after."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "serve",
        "--port",
        "0",
        "--log-level",
        "info",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    port_found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read_output() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            match = re.search(r"on http://127\.0\.0\.1:(\d+)/", line) or _RUNNING.search(line)
            if match and not port_found.done() and int(match.group(1)) != 0:
                port_found.set_result(int(match.group(1)))
        if not port_found.done():
            port_found.set_exception(RuntimeError("hub exited:\n" + "\n".join(lines)))

    reader = asyncio.create_task(read_output())
    try:
        async with asyncio.timeout(START_TIMEOUT):
            port = await port_found
        yield Node(process, port, lines)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        await reader


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis server of our own, so a test may stop and restart it.

    On a reserved port (Redis cannot bind port 0), so that nothing else takes
    the port while the server starts or while a test has it stopped.
    """
    server = PrivateRedis(reserve_port())
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        release_port(server.port)


class PrivateRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            unavailable("redis-server is not installed")
        import redis.asyncio as redis

        client = redis.from_url(self.url)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    try:
                        await client.ping()
                        return
                    except (OSError, redis.ConnectionError):
                        await asyncio.sleep(0.02)  # no readiness event to await
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
