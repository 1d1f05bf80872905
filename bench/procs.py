"""Processes under test: the hub and the bare websockets server, pinned to core 0.

The load generator (this process) pins itself to core 1, so that on a
2-core machine the server and its load do not compete for one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from bench.ports import reserve_port

T = TypeVar("T")

# Subprocesses run `python -m bench.…` and `python -m hub.cli` from the checkout.
ROOT = Path(__file__).resolve().parent.parent
# Migrations, seeding and start-up take a few seconds; far longer means a failure.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1

SITE_TOKEN = "bench-site"  # noqa: S105 - a public site token, not a secret
SITE_ORIGIN = "http://shop.bench.test"
AGENT_PASSWORD = "bench password 1234"  # noqa: S105 - throw-away bench agents


def agent_email(index: int) -> str:
    return f"agent{index}@bench.test"


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop, the loop `hub serve` runs on: the bare baselines
    and the load generator run on it too, so that the hub is compared with the
    transport on the same loop, and the generator's own loop takes less of
    the latency it measures."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's open-file limit to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _cores() -> list[int]:
    """The cores this process may use (all of them, unless a cpuset says otherwise)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


# Chosen at import, before the generator pins itself: servers on the first
# core we may use (core 0 on a plain machine), the generator on the second.
_ALLOWED = _cores()
SERVER_CORE = _ALLOWED[0] if _ALLOWED else 0
GENERATOR_CORE = _ALLOWED[1] if len(_ALLOWED) > 1 else SERVER_CORE


def pinning_possible() -> bool:
    return len(_ALLOWED) >= 2


def pin_self(core: int = GENERATOR_CORE) -> bool:
    if not pinning_possible():
        return False
    os.sched_setaffinity(0, {core})
    return True


def pinned(argv: list[str], core: int = SERVER_CORE) -> list[str]:
    """argv prefixed with `taskset -c CORE` when the machine has that core and taskset."""
    if pinning_possible() and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *argv]
    return argv


def free_port() -> int:
    """A port for a server process (reserved: see bench/ports.py for why not port 0)."""
    return reserve_port()


async def wait_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # nothing to await until it listens
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"server did not listen on {port} within {START_TIMEOUT} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    """A server process on 127.0.0.1:port, logging to a file."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the generator dies, even by SIGKILL,
    so that no server outlives an interrupted run (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        command = pinned(argv)
        return subprocess.Popen(  # noqa: S603 - our own argv
            command, env=env, stdout=out, stderr=out, cwd=ROOT, preexec_fn=_die_with_parent
        )


async def _start(argv: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    process = _spawn(argv, env, log)
    server = Server(process, port, log)
    try:
        await wait_listening(port, process, log)
    except BaseException:
        await server.stop()
        raise
    return server


@dataclass
class HubSetup:
    """A migrated, seeded data directory for `hub serve`."""

    data_dir: Path
    agents: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> Path:
        return self.data_dir / "hub.db"

    @classmethod
    def create(cls, agents: int, root: Path | None = None, **settings: str) -> HubSetup:
        """Migrated and seeded; `settings` (HUB_…) override the embedded SQLite defaults."""
        data_dir = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=root))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATA_DIR=str(data_dir),
            HUB_DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}",
            HUB_SECRET_KEY=secrets.token_urlsafe(48),
            HUB_DEMO="false",
            # hub serve's own mail server: on a port of the OS's choosing, not the
            # default 2525 that every other hub on the machine wants too.
            HUB_MAIL_PORT="0",
        )
        env.update(settings)
        setup = cls(data_dir, agents, env)
        setup._run([sys.executable, "-m", "hub", "migrate"])
        setup._run([sys.executable, "-m", "bench.seed", "--agents", str(agents)])
        return setup

    def _run(self, argv: list[str]) -> None:
        options: dict[str, Any] = {
            "env": self.env,
            "cwd": ROOT,
            "capture_output": True,
            "text": True,
        }
        done = subprocess.run(argv, check=False, **options)  # noqa: S603 - our own argv
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")

    async def serve(self) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "bench.hubserve", "--port", str(port)]
        return await _start(argv, self.env, port, self.data_dir / "hub.log")

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def start_bare(log_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare", "--port", str(port)]
    return await _start(argv, dict(os.environ), port, log_dir / "bare.log")
