"""Shared fixtures: a migrated temporary store, a started hub, a live server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from channels.webchat.protocol import WS_MAX_SIZE
from channels.websocket.protocol import HubWebSocketProtocol
from hub.composition.app import create_app
from hub.composition.assemble import start_hub
from hub.core import Hub
from hub.models import Agent, Inbox, Role
from hub.settings import Settings
from storage.migrate import upgrade
from tests.clock import FakeClock
from tests.console_client import AGENT_PASSWORD, Console, log_in, new_http
from tests.email_helpers import MAIL_TEST_ENV


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """With pytest-xdist turned off (`pytest -p no:xdist`), its options in addopts
    (pyproject.toml) are accepted and mean nothing: the tests run in this process."""
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist", "distributed testing (pytest-xdist is turned off)")
    group._addoption("-n", "--numprocesses", dest="numprocesses", default=0, help="ignored")
    group.addoption("--dist", dest="dist", default="no", help="ignored")


def make_settings(tmp_path: Path, **overrides: str) -> Settings:
    environ = {
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "HUB_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "HUB_DEMO": "false",
        # The tests' mail servers listen on loopback.
        "HUB_MAIL_ALLOW_PRIVATE_HOSTS": "true",
        **MAIL_TEST_ENV,
        **overrides,
    }
    return Settings.load(environ=environ, env_file="/nonexistent")


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store at the head revision, made once per test process (migrating
    took about half a second, for each of some 700 tests)."""
    directory = tmp_path_factory.mktemp("migrated")
    upgrade(make_settings(directory).database_url)
    store = directory / "hub.db"
    # Everything in the one file: a copy of it is the whole store.
    assert not (directory / "hub.db-wal").exists(), "the migration left a WAL behind"
    return store


def migrated_settings(tmp_path: Path, migrated_store: Path, **overrides: str) -> Settings:
    """Settings on a fresh copy of the migrated store in `tmp_path`."""
    shutil.copyfile(migrated_store, tmp_path / "hub.db")
    return make_settings(tmp_path, **overrides)


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    return migrated_settings(tmp_path, migrated_store)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    started = await start_hub(settings)
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def transactions(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the store's read and write transactions."""
    counted = {"write": 0, "read": 0}

    def counting(kind):  # type: ignore[no-untyped-def]
        original = getattr(hub.db, kind)

        @contextlib.asynccontextmanager
        async def transaction():  # type: ignore[no-untyped-def]
            counted[kind] += 1
            async with original() as conn:
                yield conn

        monkeypatch.setattr(hub.db, kind, transaction)

    counting("write")
    counting("read")
    return counted


class WriteFaults:
    """Write transactions of the store that fail once their work has run: through the
    public `hub.db.write`, never a batch's own function. Each opens a real transaction,
    lets its caller write, then fails before the commit (rolled back: nothing stored)."""

    def __init__(self, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
        self._db = hub.db
        self._monkeypatch = monkeypatch
        self._write = hub.db.write
        self.failed = 0  # transactions failed so far
        self.one_failed = asyncio.Event()

    def fail(self, reason: str = "injected: the store went away") -> None:
        write = self._write

        @contextlib.asynccontextmanager
        async def failing():  # type: ignore[no-untyped-def]
            async with write() as conn:
                yield conn  # the caller's statements run …
                self.failed += 1
                self.one_failed.set()
                raise ConnectionResetError(reason)  # … and are rolled back

        self._monkeypatch.setattr(self._db, "write", failing)

    def heal(self) -> None:
        self._monkeypatch.setattr(self._db, "write", self._write)


@pytest.fixture
def write_faults(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> WriteFaults:
    """`fail()` makes every write transaction fail after its work (see WriteFaults); `heal()`."""
    return WriteFaults(hub, monkeypatch)


@pytest.fixture
def clock(hub: Hub) -> FakeClock:
    """Visitor presence and tracking, the times stored with visitors and the
    visitor tokens' ages, on a clock the test moves (no waiting for timeouts)."""
    fake = FakeClock()
    hub.visitor_presence.clock = fake
    hub.visitors.wall_clock = fake
    hub.tokens.clock = fake
    return fake


@pytest.fixture
async def admin(hub: Hub) -> Agent:
    return await hub.agents.create("admin@example.com", "Ada Admin", AGENT_PASSWORD, Role.ADMIN)


@pytest.fixture
async def agent(hub: Hub) -> Agent:
    return await hub.agents.create("sam@example.com", "Sam Agent", AGENT_PASSWORD, Role.AGENT)


@pytest.fixture
async def website(hub: Hub) -> Inbox:
    return await hub.inboxes.create_website("Acme shop", ["http://shop.test", "http://127.0.0.2:1"])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    hub: Hub
    port: int
    app: Starlette


def _bound_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@pytest.fixture
async def live_server(hub: Hub, settings: Settings) -> AsyncIterator[LiveServer]:
    """The whole app served by uvicorn on 127.0.0.1, port chosen by the OS."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    app = create_app(settings, hub=hub)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws=HubWebSocketProtocol,
        ws_max_size=WS_MAX_SIZE,
        lifespan="on",
        ws_ping_interval=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", hub, port, app)
    finally:
        server.should_exit = True
        await task
        sock.close()


# ---- console clients (helpers in tests/console_client.py) ----


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with new_http(live_server) as client:
        yield client


@pytest.fixture
async def as_admin(live_server: LiveServer, admin: Agent) -> AsyncIterator[Console]:
    async with new_http(live_server) as client:
        yield await log_in(client, admin.email)


@pytest.fixture
async def as_agent(live_server: LiveServer, agent: Agent) -> AsyncIterator[Console]:
    async with new_http(live_server) as client:
        yield await log_in(client, agent.email)
