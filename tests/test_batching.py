"""Group commit and group read (storage.batching) against a real store, on both engines.

The work under test writes contacts: one row per item, its name the item.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

from hub.errors import InvalidInput
from storage.batching import GroupCommit, GroupRead
from storage.db import Database
from storage.errors import StoreUnavailable
from storage.tables import contacts
from tests.engines import settings  # noqa: F401 - runs every test on both engines

NOW = sa.func.current_timestamp()


async def insert_contacts(conn, names):  # type: ignore[no-untyped-def]
    """One contact per name; "refused" is answered with an error and written not at all."""
    results = []
    for name in names:
        if name == "refused":
            results.append(InvalidInput("refused by the work itself"))
            continue
        results.append(
            await conn.scalar(
                contacts.insert()
                .values(name=name, attributes={}, created_at=NOW)
                .returning(contacts.c.id)
            )
        )
    return results


async def find_contacts(conn, names):  # type: ignore[no-untyped-def]
    rows = await conn.execute(sa.select(contacts.c.name, contacts.c.id))
    ids = {row.name: row.id for row in rows}
    return [ids.get(name) for name in names]


@pytest.fixture
async def db(settings):  # type: ignore[no-untyped-def]  # noqa: F811
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
def transactions(db, monkeypatch):  # type: ignore[no-untyped-def]
    """Counts the store's read and write transactions."""
    counted = {"write": 0, "read": 0}

    def counting(kind):  # type: ignore[no-untyped-def]
        original = getattr(db, kind)

        @contextlib.asynccontextmanager
        async def transaction():  # type: ignore[no-untyped-def]
            counted[kind] += 1
            async with original() as conn:
                yield conn

        monkeypatch.setattr(db, kind, transaction)

    counting("write")
    counting("read")
    return counted


@pytest.fixture
def failing_commit(db, monkeypatch):  # type: ignore[no-untyped-def]
    """Makes the next COMMIT on the store's connections fail (once)."""
    dialect = db.engine.sync_engine.dialect
    commit = dialect.do_commit
    state = {"armed": False}

    def do_commit(dbapi_connection):  # type: ignore[no-untyped-def]
        if state["armed"]:
            state["armed"] = False
            raise ConnectionResetError("injected: the commit failed")
        commit(dbapi_connection)

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return state


async def stored_names(db):  # type: ignore[no-untyped-def]
    async with db.read() as conn:
        return sorted((await conn.execute(sa.select(contacts.c.name))).scalars())


async def test_an_item_the_work_refuses_fails_alone(db):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=100)
    results = await asyncio.gather(
        commits.submit("ada"), commits.submit("refused"), commits.submit("bob"),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(results[1], InvalidInput)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert await stored_names(db) == ["ada", "bob"]


async def test_a_failed_commit_fails_every_caller_of_its_batch_and_stores_none_of_it(
    db, failing_commit
):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=100)
    await commits.submit("before")
    failing_commit["armed"] = True
    results = await asyncio.gather(
        *(commits.submit(f"lost {n}") for n in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert "The contact was not stored (the store failed: injected: the commit failed)" in str(
        results[0]
    )
    assert isinstance(results[0].__cause__, ConnectionResetError)
    assert await stored_names(db) == ["before"]
    assert isinstance(await commits.submit("after"), int)  # the next batch is stored
    assert await stored_names(db) == ["after", "before"]


async def test_a_failing_statement_rolls_the_whole_batch_back(db):
    async def insert_then_fail_on_boom(conn, names):  # type: ignore[no-untyped-def]
        ids = await insert_contacts(conn, names)
        if "boom" in names:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))
        return ids

    commits = GroupCommit(db, insert_then_fail_on_boom, what="contact", max_batch=100)
    results = await asyncio.gather(
        commits.submit("ada"), commits.submit("boom"), commits.submit("bob"),
        return_exceptions=True,
    )  # fmt: skip
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert "no_such_table" in str(results[0])
    assert await stored_names(db) == []
    assert isinstance(await commits.submit("carl"), int)


async def test_a_caller_that_gives_up_before_its_batch_is_taken_is_left_out(db):
    storing = asyncio.Event()
    release = asyncio.Event()

    async def slow_insert(conn, names):  # type: ignore[no-untyped-def]
        storing.set()
        await release.wait()
        return await insert_contacts(conn, names)

    commits = GroupCommit(db, slow_insert, what="contact", max_batch=100)
    first = asyncio.create_task(commits.submit("first"))
    await storing.wait()  # the first batch is being stored; the next ones queue
    kept = asyncio.create_task(commits.submit("kept"))
    given_up = asyncio.create_task(commits.submit("given up"))
    await asyncio.sleep(0)  # (both queued)
    given_up.cancel()
    release.set()
    assert isinstance(await first, int) and isinstance(await kept, int)
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert await stored_names(db) == ["first", "kept"]


async def test_closing_finishes_what_is_queued_and_then_refuses(db):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=2)
    waiting = [asyncio.create_task(commits.submit(f"last {n}")) for n in range(5)]
    await asyncio.sleep(0)  # (queued)
    await commits.close()
    assert all(isinstance(i, int) for i in await asyncio.gather(*waiting))
    with pytest.raises(StoreUnavailable, match="stopping; the contact was not stored"):
        await commits.submit("too late")
    assert len(await stored_names(db)) == 5


async def test_a_failed_read_fails_its_batch_with_unavailable(db):
    async def broken(conn, names):  # type: ignore[no-untyped-def]
        await conn.execute(sa.text("SELECT * FROM no_such_table"))
        return names

    reads = GroupRead(db, broken, what="contact", max_batch=100)
    results = await asyncio.gather(reads.submit("a"), reads.submit("b"), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert "The contact was not read (the store failed:" in str(results[0])
