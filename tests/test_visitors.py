"""Visitors' creation, last-seen time and lookup (hub.visitors), on both engines.

Every widget hello creates its visitor, or looks it up (and, when not
tracked, stamps its last-seen time); after a restart thousands do so at once,
so each is shared by the hellos that arrive together.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub.errors import InvalidInput, Unavailable
from hub.visitors.service import SEEN_EVERY_SECONDS
from storage.tables import visitors as visitors_table
from tests.clock import FakeClock
from tests.engines import settings  # noqa: F401 - runs every test on both engines

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock(hub):  # type: ignore[no-untyped-def]
    fake = FakeClock()
    hub.visitors.clock = fake
    return fake


async def some_visitors(hub, inbox, count):  # type: ignore[no-untyped-def]
    people = [await hub.visitors.create(inbox, "pytest") for _ in range(count)]
    async with hub.db.write() as conn:  # seen long ago
        await conn.execute(visitors_table.update().values(last_seen_at=LONG_AGO))
    return people


async def last_seen(hub, visitor):  # type: ignore[no-untyped-def]
    seen = (await hub.visitors.get(visitor.id)).last_seen_at
    return seen.replace(tzinfo=seen.tzinfo or UTC)


async def test_the_stamps_of_hellos_that_arrive_together_share_one_transaction(
    hub, website, transactions
):
    people = await some_visitors(hub, website, 40)
    before = transactions["write"]
    started = datetime.now(UTC)
    await asyncio.gather(*(hub.visitors.seen(p.id) for p in people))
    assert transactions["write"] == before + 1
    for person in people:
        assert await last_seen(hub, person) >= started.replace(microsecond=0)


async def test_a_visitor_is_stamped_at_most_once_a_minute(hub, website, clock):
    (person,) = await some_visitors(hub, website, 1)
    await hub.visitors.seen(person.id)
    first = await last_seen(hub, person)
    assert first > LONG_AGO
    clock.advance(SEEN_EVERY_SECONDS - 1)
    await hub.visitors.seen(person.id)  # within the minute: not written
    assert await last_seen(hub, person) == first
    clock.advance(1)
    await hub.visitors.seen(person.id)
    assert await last_seen(hub, person) > first


async def test_a_stamp_with_a_page_is_written_at_once_every_time(hub, website, clock):
    (person,) = await some_visitors(hub, website, 1)
    await hub.visitors.seen(person.id)
    await hub.visitors.seen(person.id, "https://shop.test/p/1", "Shoes")
    stored = await hub.visitors.get(person.id)
    assert (stored.last_page_url, stored.last_page_title) == ("https://shop.test/p/1", "Shoes")


async def test_a_failed_commit_fails_its_stamps_writes_none_and_the_next_is_stored(
    hub, website, write_faults
):
    people = await some_visitors(hub, website, 3)
    write_faults.fail()  # the rows are updated … and rolled back
    results = await asyncio.gather(
        *(hub.visitors.seen(p.id) for p in people), return_exceptions=True
    )
    assert all(isinstance(r, Unavailable) for r in results)
    assert "last-seen time was not stored" in str(results[0])
    assert "injected: the store went away" in str(results[0])
    assert write_faults.failed == 1  # one transaction for the three, and it failed them all
    for person in people:
        assert await last_seen(hub, person) == LONG_AGO
    write_faults.heal()
    await hub.visitors.seen(people[0].id)  # not counted as stamped: written now
    assert await last_seen(hub, people[0]) > LONG_AGO


async def test_lookups_that_arrive_together_share_one_read(hub, website, transactions):
    people = [await hub.visitors.create(website, f"agent {n}") for n in range(30)]
    before = transactions["read"]
    found = await asyncio.gather(
        *(hub.visitors.lookup(p.id) for p in people), hub.visitors.lookup("v_nobody")
    )
    assert transactions["read"] == before + 1
    assert found[-1] is None
    assert found[:-1] == [await hub.visitors.get(p.id) for p in people]


async def test_visitors_created_together_share_one_transaction_each_with_a_contact(
    hub, website, transactions
):
    before = transactions["write"]
    created = await asyncio.gather(*(hub.visitors.create(website, f"agent {n}") for n in range(25)))
    assert transactions["write"] == before + 1
    assert len({v.id for v in created}) == len({v.contact_id for v in created}) == 25
    for n, visitor in enumerate(created):
        assert await hub.visitors.get(visitor.id) == visitor  # as stored
        assert (visitor.inbox_id, visitor.user_agent, visitor.visit_count) == (
            website.id,
            f"agent {n}",
            1,
        )
        assert visitor.last_seen_at == visitor.created_at
        assert (await hub.visitors.contact(visitor.contact_id)).attributes == {}


async def test_the_last_seen_time_survives_a_stop_with_stamps_queued(hub, website):
    people = await some_visitors(hub, website, 3)
    waiting = [asyncio.create_task(hub.visitors.seen(p.id)) for p in people]
    await asyncio.sleep(0)  # (queued)
    await hub.visitors.close()
    await asyncio.gather(*waiting)
    for person in people:
        assert await last_seen(hub, person) > LONG_AGO
    with pytest.raises(Unavailable, match="stopping"):
        await hub.visitors.seen((await hub.visitors.create(website)).id)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_non_finite_custom_attributes_are_refused_by_the_service_and_not_stored(
    hub,
    website,
    value,  # type: ignore[no-untyped-def]
):
    # The widget's JSON reader refuses NaN already; any other caller of the
    # service (an import, a future API) must not store what JSON cannot carry.
    visitor = await hub.visitors.create(website)
    with pytest.raises(InvalidInput):
        await hub.visitors.set_attributes(visitor, {"plan": "pro", "score": value})
    assert (await hub.contacts.get(visitor.contact_id)).attributes == {}
