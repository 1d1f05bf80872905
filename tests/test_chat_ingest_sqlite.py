"""Web chat's common case on SQLite, a run of messages per thread hop (hub.chat_ingest_sqlite).

The mixed batches, errors and event order are in test_ingest_batching.py, on
both engines; here what only SQLite has: aiosqlite's private thread hop, one
hop per batch, and rows and answers identical to the SQLAlchemy path's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.composition.assemble import start_hub
from hub.conversations import chat_ingest as conversations_module
from hub.conversations import chat_ingest_sqlite
from hub.conversations import log as conversation_log
from hub.conversations.chat_ingest_sqlite import _DIALECT, RawStatement, in_worker
from hub.core import Hub
from hub.errors import Unavailable
from hub.models import Inbound, Role, Status
from storage.migrate import upgrade_async
from tests.conftest import make_settings
from tests.console_client import AGENT_PASSWORD

FROZEN = datetime(2026, 3, 4, 5, 6, 7, 89012, tzinfo=UTC)


def inbound(inbox, visitor, text, client_id=None, **extra):  # type: ignore[no-untyped-def]
    return Inbound.web_chat(
        inbox_id=inbox.id, text=text, client_id=client_id, visitor_id=visitor.id, **extra
    )


@contextlib.contextmanager
def counting_in_worker(monkeypatch):  # type: ignore[no-untyped-def]
    """Counts the calls of the one thread-hop function."""
    counted = {"calls": 0}

    async def counting(conn, call):  # type: ignore[no-untyped-def]
        counted["calls"] += 1
        return await in_worker(conn, call)

    with monkeypatch.context() as patch:
        patch.setattr(chat_ingest_sqlite, "in_worker", counting)
        yield counted


async def test_in_worker_runs_in_aiosqlite_thread_on_its_sqlite3_connection(hub):
    # Fails loudly if aiosqlite renames or changes Connection._execute, ._conn or ._thread.
    async with hub.db.write() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        thread, raw, in_transaction = await in_worker(
            conn, lambda raw: (threading.get_ident(), raw, raw.in_transaction)
        )
    assert thread == driver._thread.ident != threading.get_ident()
    assert isinstance(raw, sqlite3.Connection)
    assert in_transaction  # the BEGIN IMMEDIATE of Database.write


async def test_the_statements_compile_as_on_the_hubs_engine(hub):
    dialect = hub.db.engine.dialect  # initialized by a real connection
    for statement in (
        conversations_module.STATEMENTS.visitor_and_target,
        conversations_module.STATEMENTS.append,
        conversations_module.STATEMENTS.insert,
    ):
        assert RawStatement(statement).sql == str(statement.compile(dialect=dialect))


def counting_hops(hub, monkeypatch, method: str) -> list[int]:  # type: ignore[no-untyped-def]
    """Replaces hub.db.`method` (write or write_turn) by one that counts the hops to
    aiosqlite's thread made on its connection; one count per use."""
    hops: list[int] = []
    original = getattr(hub.db, method)

    @contextlib.asynccontextmanager
    async def counting():  # type: ignore[no-untyped-def]
        async with original() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            execute = driver._execute
            counted = [0]

            async def count(*args, **kwargs):  # type: ignore[no-untyped-def]
                counted[0] += 1
                return await execute(*args, **kwargs)

            driver._execute = count
            try:
                yield conn
            finally:
                del driver._execute
                hops.append(counted[0])

    monkeypatch.setattr(hub.db, method, counting)
    return hops


def counting_inline(hub, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Replaces hub.db.write_inline by one that notes the thread of each use."""
    threads: list[int] = []
    original = hub.db.write_inline

    @contextlib.asynccontextmanager
    async def noting():  # type: ignore[no-untyped-def]
        async with original() as raw:
            threads.append(threading.get_ident())
            yield raw

    monkeypatch.setattr(hub.db, "write_inline", noting)
    return threads


class FailingCommit:
    """A sqlite3 connection whose COMMIT fails as a full disk would."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.raw.execute(sql, *args)

    def cursor(self) -> sqlite3.Cursor:
        return self.raw.cursor()

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        self.raw.close()


async def test_an_inline_batch_whose_commit_fails_stores_nothing_and_the_writer_goes_on(
    hub, website, monkeypatch
):
    people = [await hub.visitors.create(website, "pytest") for _ in range(3)]
    for person in people:
        await hub.conversations.ingest(inbound(website, person, "open"))
    original = hub.db.write_inline

    @contextlib.asynccontextmanager
    async def failing_commit():  # type: ignore[no-untyped-def]
        async with original() as raw:
            yield FailingCommit(raw)

    with monkeypatch.context() as patch:
        patch.setattr(hub.db, "write_inline", failing_commit)
        failed = await asyncio.gather(
            *[hub.conversations.ingest(inbound(website, p, "lost")) for p in people],
            return_exceptions=True,
        )
    # Each caller hears the hub's own error, saying nothing was stored.
    assert all(isinstance(result, Unavailable) for result in failed), failed
    assert all("not stored" in str(result) for result in failed)
    async with hub.db.read() as conn:
        lost = await conn.exec_driver_sql("SELECT count(*) FROM messages WHERE text = 'lost'")
        assert lost.scalar() == 0
    after = await hub.conversations.ingest(inbound(website, people[0], "still here"))
    assert after.message.seq == 2


async def test_while_another_process_holds_the_write_lock_the_batch_waits_its_turn_in_a_thread(
    hub, website, monkeypatch
):
    """The loop never waits on SQLite's lock: the inline attempt gives up at once
    and the threaded path waits (busy timeout) until the other writer commits."""
    people = [await hub.visitors.create(website, "pytest") for _ in range(3)]
    for person in people:
        await hub.conversations.ingest(inbound(website, person, "open"))
    other = sqlite3.connect(hub.db._sqlite_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write, say `hub` at a prompt
    gave_up = asyncio.Event()
    store_batch = chat_ingest_sqlite.CommonAppends.store_batch

    async def noting(self, db, batch):  # type: ignore[no-untyped-def]
        done = await store_batch(self, db, batch)
        if done is None:
            gave_up.set()
        return done

    monkeypatch.setattr(chat_ingest_sqlite.CommonAppends, "store_batch", noting)
    writes = counting_hops(hub, monkeypatch, "write")
    try:
        sent = asyncio.gather(
            *[hub.conversations.ingest(inbound(website, p, "waited")) for p in people]
        )
        async with asyncio.timeout(5):
            await gave_up.wait()
        assert not sent.done()
    finally:
        other.execute("COMMIT")
        other.close()
    results = await sent
    assert [posted.message.seq for posted in results] == [2, 2, 2]
    assert len(writes) == 1
    async with hub.db.read() as conn:
        waited = await conn.exec_driver_sql("SELECT count(*) FROM messages WHERE text = 'waited'")
        assert waited.scalar() == 3


async def hub_on_fresh_store(directory: Path) -> Hub:
    chosen = make_settings(directory)
    await upgrade_async(chosen.database_url)
    return await start_hub(chosen)


async def chat(hub: Hub) -> tuple[list, list[str]]:  # type: ignore[type-arg]
    """The same chat on a fresh store: two first messages, an assigned conversation
    resolved, then a batch of common messages; the answers and the visitor ids."""
    site = await hub.inboxes.create_website("Shop", ["http://shop.test"])
    agent = await hub.agents.create("sam@example.com", "Sam", AGENT_PASSWORD, Role.AGENT)
    alice, bob = [await hub.visitors.create(site, "pytest") for _ in range(2)]
    first = await hub.conversations.ingest(inbound(site, alice, "Hello", "c-1"))
    opened = await hub.conversations.ingest(inbound(site, bob, "Hi"))
    await hub.conversations.assign(agent, opened.conversation.id, agent.id)
    await hub.conversations.set_status(agent, opened.conversation.id, Status.RESOLVED)
    batch = await asyncio.gather(
        hub.conversations.ingest(inbound(site, alice, "Ünïcødé ✓ " * 30, "c-2")),  # preview cut
        hub.conversations.ingest(
            inbound(site, alice, "named", "c-3", conversation_id=first.conversation.id)
        ),
        hub.conversations.ingest(inbound(site, bob, "back again")),  # reopens, assigned
        hub.conversations.ingest(inbound(site, alice, "third")),
    )
    return [first, opened, *batch], [alice.id, bob.id]


def dump(path: Path, visitor_ids: list[str]) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Every stored value of the two tables with its Python type (so TEXT, BLOB,
    INTEGER and REAL differ), visitor ids replaced by their position."""
    names = {visitor_id: f"visitor {n}" for n, visitor_id in enumerate(visitor_ids)}
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            table: [
                tuple((type(value), names.get(value, value)) for value in row)
                for row in db.execute(f"SELECT * FROM {table} ORDER BY id")
            ]
            for table in ("conversations", "messages")
        }


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    for name in ("sqlalchemy", "raw"):
        (tmp_path / name).mkdir()
    return tmp_path


async def test_rows_and_answers_are_those_of_the_sqlalchemy_path(stores, monkeypatch):
    """The same chat on two stores at the same frozen time: the SQLAlchemy path
    alone, and with runs of common messages on the raw connection."""
    monkeypatch.setattr(conversations_module, "utcnow", lambda: FROZEN)
    monkeypatch.setattr(conversation_log, "utcnow", lambda: FROZEN)
    monkeypatch.setattr(chat_ingest_sqlite, "utcnow", lambda: FROZEN)
    answers, visitor_ids, hops = {}, {}, {}
    for name in ("sqlalchemy", "raw"):
        hub = await hub_on_fresh_store(stores / name)
        try:
            if name == "sqlalchemy":

                async def no_run(conn, pending):  # type: ignore[no-untyped-def]
                    return None

                async def not_in_one_hop(batch):  # type: ignore[no-untyped-def]
                    return False

                monkeypatch.setattr(hub.conversations.chat, "_store_common_run", no_run)
                monkeypatch.setattr(hub.conversations.chat, "_stored_in_one_hop", not_in_one_hop)
            inline = counting_inline(hub, monkeypatch)
            with counting_in_worker(monkeypatch) as calls:
                answers[name], visitor_ids[name] = await chat(hub)
            hops[name] = (calls["calls"], len(inline))
        finally:
            await hub.stop()
    # Raw: each first message was tried inline (rolled back) and in a run that
    # stopped at it, then stored the general way; the batch was inline.
    assert hops == {"sqlalchemy": (0, 0), "raw": (2, 3)}
    assert dump(stores / "raw" / "hub.db", visitor_ids["raw"]) == dump(
        stores / "sqlalchemy" / "hub.db", visitor_ids["sqlalchemy"]
    )
    renamed = dict(zip(visitor_ids["raw"], visitor_ids["sqlalchemy"], strict=True))
    for raw, reference in zip(answers["raw"], answers["sqlalchemy"], strict=True):
        conversation = dataclasses.replace(
            raw.conversation, visitor_id=renamed[raw.conversation.visitor_id]
        )
        # Equal datetimes are equally aware: the message's time is the aware
        # clock reading, the conversation's are SQLite's naive ones read back.
        assert dataclasses.replace(raw, conversation=conversation) == reference
    assert answers["raw"][2].message.created_at.tzinfo is UTC
    assert answers["raw"][2].conversation.last_activity_at.tzinfo is None
    assert answers["raw"][4].conversation.status is Status.OPEN
    assert answers["raw"][4].conversation.assignee_name == "Sam"


@pytest.mark.parametrize(
    "value",
    [
        FROZEN,
        FROZEN.replace(tzinfo=None),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(999, 12, 31, 23, 59, 59, 999999),  # a three-digit year
        datetime(9999, 1, 1, tzinfo=timezone(timedelta(hours=-5))),  # another offset
        date(2026, 3, 4),  # not a datetime: SQLAlchemy's own processor
        None,
    ],
)
def test_datetimes_are_bound_as_sqlalchemy_binds_them(value):  # type: ignore[no-untyped-def]
    slots = RawStatement(conversations_module.STATEMENTS.insert)._slots
    [(_, fast, _)] = [slot for slot in slots if slot[0] == "b_created_at"]
    reference = sa.DateTime(timezone=True).dialect_impl(_DIALECT).bind_processor(_DIALECT)
    assert fast(value) == reference(value)
