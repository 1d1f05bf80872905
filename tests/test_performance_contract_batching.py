"""Performance contracts of the store's group commit and group read
(storage/batching.py), on both engines: how many transactions and reads a
batch takes. Shape, not behaviour (that is tests/test_batching.py)."""

# The fixtures come from the behaviour tests' modules, imported by name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio

from storage.batching import GroupCommit, GroupRead
from tests.engines import settings  # noqa: F401 - every test on both engines
from tests.test_batching import (  # noqa: F401 (fixtures)
    db,
    find_contacts,
    insert_contacts,
    stored_names,
    transactions,
)


async def test_writes_that_queue_together_share_one_transaction_each_answered_after_it(
    db, transactions
):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=100)
    names = [f"c{n}" for n in range(60)]
    ids = await asyncio.gather(*(commits.submit(name) for name in names))
    assert transactions["write"] == 1
    async with db.read() as conn:  # each answer is the committed row's id
        assert ids == await find_contacts(conn, names)
    await commits.close()


async def test_a_batch_holds_at_most_max_batch_items(db, transactions):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=10)
    await asyncio.gather(*(commits.submit(f"c{n}") for n in range(25)))
    assert transactions["write"] == 3
    assert len(await stored_names(db)) == 25


async def test_reads_that_queue_together_share_one_read(db, transactions):
    commits = GroupCommit(db, insert_contacts, what="contact", max_batch=100)
    ids = await asyncio.gather(*(commits.submit(f"c{n}") for n in range(20)))
    group_reads = GroupRead(db, find_contacts, what="contact", max_batch=100)
    before = transactions["read"]
    found = await asyncio.gather(*(group_reads.submit(f"c{n}") for n in [*range(20), 99]))
    assert transactions["read"] == before + 1
    assert found == [*ids, None]
