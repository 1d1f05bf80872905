"""Several `hub worker` processes over one PostgreSQL store and one Redis: each
queued email leaves exactly once (a dead worker's expired claim is covered in
test_email_outbox.py)."""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa

from hub.composition.assemble import start_hub
from hub.models import Role
from storage.migrate import upgrade_async
from storage.tables import email_outbox
from tests.conftest import make_settings
from tests.console_client import AGENT_PASSWORD
from tests.email_helpers import inbound, make_email_inbox
from tests.mail_servers import Sink, smtp_sink
from tests.nodes import START_TIMEOUT, hub_env
from tests.servers import REDIS_URL, postgres_database, require_redis

WAIT = 30.0


@pytest.fixture
async def cluster(tmp_path):  # type: ignore[no-untyped-def]
    await require_redis()
    async with postgres_database() as database_url:
        await upgrade_async(database_url)
        yield {
            "HUB_DATABASE_URL": database_url,
            "HUB_REDIS_URL": f"{REDIS_URL}?prefix=hubmail-{secrets.token_hex(4)}:",
            "HUB_SECRET_KEY": "cluster-secret-" + secrets.token_hex(16),
        }


@asynccontextmanager
async def worker(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """A `hub worker` process; yields once it runs, terminates it after."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = (await process.stdout.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("hub worker exited before it ran")
                if re.search(r"Worker running .* email outbox", line):
                    break
        drain = asyncio.create_task(process.stdout.read())
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        drain.cancel()


async def _until_all_arrived(sink: Sink, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(sink.received) < count:
            await sink.next_message()


async def test_two_worker_processes_send_each_queued_email_once(tmp_path, cluster):
    async with smtp_sink() as sink:
        hub = await start_hub(make_settings(tmp_path, **cluster))
        try:
            inbox = await make_email_inbox(hub, smtp_port=sink.port)
            agent = await hub.agents.create("sam@example.com", "Sam", AGENT_PASSWORD, Role.AGENT)
            for n in range(15):
                ticket = await hub.email.ingest(inbox, inbound(subject=f"question {n}"))
                await hub.conversations.reply(agent, ticket.conversation_id, f"answer {n}")
            env = hub_env(tmp_path, **cluster)
            async with worker(env), worker(env):
                await _until_all_arrived(sink, 15)
                # Queued while both run: woken over Redis, still sent once.
                ticket = await hub.email.ingest(inbox, inbound(subject="late"))
                await hub.conversations.reply(agent, ticket.conversation_id, "late answer")
                await _until_all_arrived(sink, 16)
            ids = [received.message["Message-ID"] for received in sink.received]
            assert len(ids) == 16 and len(set(ids)) == 16
            async with hub.db.read() as conn:
                states = (await conn.execute(sa.select(email_outbox.c.state))).scalars().all()
            assert states == ["sent"] * 16  # nothing left that could go out a second time
        finally:
            await hub.stop()
