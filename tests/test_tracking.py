"""Live visitors' store and presence (hub.tracking) on SQLite and on PostgreSQL.

Time is a fake clock: idle, leave and "seconds on page" are decided by
advancing it, never by waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hub.errors import InvalidInput, NotFound, TooLarge, Unavailable
from hub.events import topics
from hub.models import ContactDetails, Inbound
from hub.visitors.presence import (
    IDLE_AFTER_SECONDS,
    LEAVE_AFTER_SECONDS,
    RECONNECT_GRACE_SECONDS,
    MemoryPresence,
)
from hub.visitors.tracking import TrackingService
from hub.visitors.trail import VISIT_GAP_SECONDS
from storage.tables import visitors as visitors_table
from tests.engines import settings  # noqa: F401 - runs every test on both engines


@pytest.fixture
async def visitor(hub, website):  # type: ignore[no-untyped-def]
    return await hub.visitors.create(
        website, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    )


async def drain(subscription) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every event published so far (the memory bus delivers on the next loop turns)."""
    import asyncio

    await asyncio.sleep(0)
    out = []
    while subscription.pending():
        out.append((await subscription.get()).json())
    return out


async def test_page_views_form_the_trail_in_order_with_time_on_each_page(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home", "https://duck.test/q")
    clock.advance(12)
    await hub.tracking.page_view(visitor, website, "https://shop.test/pricing", "Pricing")
    clock.advance(30)
    await hub.tracking.page_view(visitor, website, "https://shop.test/pricing#faq", "FAQ")
    view = await hub.tracking.visitor_view(visitor.id)
    pages = view["visits"][0]["pages"]
    assert [(p["url"], p["title"], p["seconds"]) for p in pages] == [
        ("https://shop.test/", "Home", 12),
        ("https://shop.test/pricing", "Pricing", 30),
        ("https://shop.test/pricing#faq", "FAQ", None),
    ]
    live = view["live"]
    assert live["pages"] == 3 and live["page"]["title"] == "FAQ"
    assert live["source"] == "duck.test" and live["referrer"] == "https://duck.test/q"
    assert live["device"] == {
        "kind": "mobile",
        "browser": "Mobile Safari UI/WKWebView",
        "system": "iOS",
    }


async def test_each_page_view_is_published_to_agents_after_it_is_stored(hub, website, visitor):
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        await hub.tracking.arrive(visitor, website, "https://shop.test/a", "A")
        frames = await drain(subscription)
    assert frames[-1]["type"] == "visitor"
    assert frames[-1]["page_view"]["url"] == "https://shop.test/a"
    assert frames[-1]["visitor"]["page"]["url"] == "https://shop.test/a"
    assert not any(key.startswith("_") for key in frames[-1]["visitor"])
    stored = await hub.tracking.recent_pages(visitor.id)
    assert stored[0].id == frames[-1]["page_view"]["id"]


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://shop.test/reset?token=abc&step=2", "https://shop.test/reset?step=2"),
        ("https://shop.test/?EMAIL=a%40b.co&utm=x", "https://shop.test/?utm=x"),
        ("https://shop.test/?to=ada@example.com", "https://shop.test/"),
        ("https://shop.test/?api_key=1&sessionid=2&password=3", "https://shop.test/"),
        ("https://user:pw@shop.test/p", "https://shop.test/p"),
        ("https://shop.test/cb#access_token=s3cret&state=1", "https://shop.test/cb#state=1"),
        ("https://shop.test/app#/pricing", "https://shop.test/app#/pricing"),
    ],
)
async def test_secret_query_parameters_are_stripped_before_storing(
    hub, website, visitor, url, stored
):
    await hub.tracking.page_view(visitor, website, url, "x")
    assert (await hub.tracking.recent_pages(visitor.id))[0].url == stored


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("javascript:alert(1)", InvalidInput),
        ("data:text/html,hi", InvalidInput),
        ("ftp://shop.test/file", InvalidInput),
        ("/relative/path", InvalidInput),
        ("https://shop.test/\x00", InvalidInput),
        ("https://shop.test/" + "a" * 2000, TooLarge),
        (42, InvalidInput),
    ],
)
async def test_a_bad_page_address_is_refused_and_changes_nothing(hub, website, visitor, url, error):
    with pytest.raises(error):
        await hub.tracking.page_view(visitor, website, url, "x")
    assert await hub.tracking.recent_pages(visitor.id) == []
    assert await hub.tracking.online() == []


async def test_an_overlong_title_is_refused(hub, website, visitor):
    with pytest.raises(TooLarge):
        await hub.tracking.page_view(visitor, website, "https://shop.test/", "t" * 301)


async def test_idle_after_minutes_without_activity_and_active_again_on_a_page(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        for step in (60, 60, IDLE_AFTER_SECONDS - 121):
            clock.advance(step)
            await hub.tracking.heartbeat(visitor, website)  # a heartbeat is not activity
            await hub.tracking.sweep()
        assert await drain(subscription) == []
        clock.advance(1)
        assert (await hub.tracking.online())[0]["state"] == "idle"  # shown at once
        await hub.tracking.sweep()  # and published to every console
        idle = await drain(subscription)
    assert [(f["type"], f["visitor"]["state"]) for f in idle] == [("visitor", "idle")]
    await hub.tracking.page_view(visitor, website, "https://shop.test/b", "B")
    assert (await hub.tracking.online())[0]["state"] == "active"


async def test_hidden_tab_is_shown_and_back_to_active_when_visible(hub, website, visitor):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.tracking.visibility(visitor, website, visible=False)
    assert (await hub.tracking.online())[0]["state"] == "hidden"
    await hub.tracking.visibility(visitor, website, visible=True)
    assert (await hub.tracking.online())[0]["state"] == "active"


async def test_visitor_leaves_after_missed_heartbeats_and_time_on_last_page_is_kept(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    clock.advance(LEAVE_AFTER_SECONDS - 5)
    await hub.tracking.heartbeat(visitor, website)
    clock.advance(LEAVE_AFTER_SECONDS - 5)
    await hub.tracking.sweep()
    assert len(await hub.tracking.online()) == 1  # the heartbeat kept them
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        clock.advance(5)
        await hub.tracking.sweep()
        left = await drain(subscription)
    assert left == [{"type": "visitor_left", "visitor_id": visitor.id, "inbox_id": website.id}]
    assert await hub.tracking.online() == []
    assert (await hub.tracking.recent_pages(visitor.id))[0].seconds == 0  # no activity after


async def test_closing_the_socket_leaves_after_a_short_grace_unless_the_next_page_connects(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.tracking.left(visitor, website)
    clock.advance(2)
    # A multi-page site: the next page's widget connects and the visit goes on.
    await hub.tracking.arrive(visitor, website, "https://shop.test/cart", "Cart")
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    online = await hub.tracking.online()
    assert [(v["pages"], v["visit"], v["page"]["title"]) for v in online] == [(2, 1, "Cart")]
    await hub.tracking.left(visitor, website)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    assert await hub.tracking.online() == []


async def test_reconnecting_on_the_same_page_is_not_a_new_page_view(hub, website, visitor):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.tracking.left(visitor, website)
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    assert len(await hub.tracking.recent_pages(visitor.id)) == 1


async def test_a_returning_visitor_is_recognised_with_visit_count_and_first_seen(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.tracking.left(visitor, website)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    clock.advance(31 * 60)
    await hub.tracking.arrive(visitor, website, "https://shop.test/again", "Again")
    view = await hub.tracking.visitor_view(visitor.id)
    assert view["visit_count"] == 2 and view["live"]["returning"] is True
    assert [v["visit"] for v in view["visits"]] == [2, 1]
    assert view["visits"][0]["pages"][0]["url"] == "https://shop.test/again"
    assert view["first_seen"] == view["live"]["first_seen"]


async def test_page_views_belong_to_the_contact_and_follow_a_verified_identity(
    hub, website, visitor
):
    from hub.security import identity_hash

    other = await hub.visitors.create(website, "pytest")
    await hub.visitors.identify(
        other, website, "user-7", claimed_hash=identity_hash(website.identity_secret, "user-7")
    )
    await hub.tracking.page_view(visitor, website, "https://shop.test/", "Home")
    contact = await hub.visitors.identify(
        visitor, website, "user-7", claimed_hash=identity_hash(website.identity_secret, "user-7")
    )
    async with hub.db.read() as conn:
        from sqlalchemy import select

        from storage.tables import page_views

        owners = (await conn.execute(select(page_views.c.contact_id))).scalars().all()
    assert owners == [contact.id]


async def test_writing_an_email_makes_the_visitor_known_in_the_live_view(hub, website, visitor):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.conversations.ingest(
        Inbound.web_chat(
            website.id,
            "hi",
            "c-1",
            visitor_id=visitor.id,
            contact=ContactDetails(email="ada@example.com"),
        )
    )
    await hub.tracking.refresh(visitor.id)
    live = (await hub.tracking.online())[0]
    # Typed in the away form, the address is only claimed (anyone can type anyone's).
    assert live["known"] is True and live["contact"]["email"] is None
    assert live["contact"]["claimed"] == {"email": "ada@example.com"}
    assert live["chatting"] is True


async def test_retention_cleanup_deletes_only_page_views_past_the_period(
    hub, website, visitor, clock
):
    await hub.tracking.page_view(visitor, website, "https://shop.test/old", "Old")
    clock.advance(89 * 86400)
    await hub.tracking.page_view(visitor, website, "https://shop.test/new", "New")
    clock.advance(1 * 86400 + 60)
    assert await hub.tracking.cleanup() == 1
    assert [p.url for p in await hub.tracking.recent_pages(visitor.id)] == ["https://shop.test/new"]


async def test_a_visitor_back_within_the_visit_keeps_their_page_and_count(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home", "https://a.test/")
    await hub.tracking.page_view(visitor, website, "https://shop.test/cart", "Cart")
    clock.advance(LEAVE_AFTER_SECONDS + 1)  # the laptop slept: presence expired
    await hub.tracking.sweep()
    assert await hub.tracking.online() == []
    await hub.tracking.heartbeat(visitor, website)  # awake again, same visit
    [live] = await hub.tracking.online()
    assert (live["visit"], live["pages"], live["page"]["title"]) == (1, 2, "Cart")
    assert live["source"] == "a.test"


async def stored_visit(hub, visitor_id):  # type: ignore[no-untyped-def]
    """(visit count, visit started, last seen) as stored, in UTC."""
    row = await hub.visitors.get(visitor_id)
    started = row.visit_started_at
    return (
        row.visit_count,
        started.replace(tzinfo=started.tzinfo or UTC) if started else None,
        row.last_seen_at.replace(tzinfo=row.last_seen_at.tzinfo or UTC),
    )


async def gone_for(hub, website, visitor, clock, seconds):  # type: ignore[no-untyped-def]
    """The visitor's socket closed; after the grace they have left; then `seconds` pass."""
    await hub.tracking.left(visitor, website)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    clock.advance(seconds)


async def test_visits_begun_together_share_one_transaction_and_each_is_as_if_alone(
    hub, website, clock, transactions
):
    back_later, reloading, fresh, two_tabs = [
        await hub.visitors.create(website, "pytest") for _ in range(4)
    ]
    await hub.tracking.arrive(back_later, website, "https://shop.test/old", "Old")
    await gone_for(hub, website, back_later, clock, VISIT_GAP_SECONDS + 60)
    await hub.tracking.arrive(reloading, website, "https://shop.test/cart", "Cart")
    await gone_for(hub, website, reloading, clock, 0)  # (as after a restart of the hub)
    before = transactions["write"]
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        snapshots = await asyncio.gather(
            hub.tracking.arrive(back_later, website, "https://shop.test/again", "Again"),
            hub.tracking.arrive(reloading, website, "https://shop.test/cart", "Cart"),
            hub.tracking.arrive(fresh, website, "https://shop.test/", "Home"),
            hub.tracking.arrive(two_tabs, website, "https://shop.test/a", "A"),
            hub.tracking.arrive(two_tabs, website, "https://shop.test/a", "A"),
        )
        published = await drain(subscription)
    # Two transactions: the five visits in one, then the four new pages (all but the reload's)
    # in one; a transaction each would be nine.
    assert transactions["write"] == before + 2
    now = datetime.fromtimestamp(clock(), UTC)
    shown = [(s["visit"], s["returning"], s["pages"], s["page"]["title"]) for s in snapshots]
    assert shown == [
        (2, True, 1, "Again"),
        (1, False, 1, "Cart"),  # the visit goes on, on the page they were on
        (1, False, 1, "Home"),
        (1, False, 1, "A"),
        (1, False, 1, "A"),
    ]
    assert await stored_visit(hub, back_later.id) == (2, now, now)
    assert (await stored_visit(hub, reloading.id))[0] == 1
    assert await stored_visit(hub, fresh.id) == (1, now, now)
    assert (await stored_visit(hub, two_tabs.id))[0] == 1
    assert sorted(f["visitor"]["id"] for f in published) == sorted(
        p.id for p in (back_later, reloading, fresh, two_tabs, two_tabs)
    )
    assert len(await hub.tracking.recent_pages(reloading.id)) == 1  # no new page view


async def test_a_failed_visit_batch_fails_its_arrivals_and_stores_and_shows_nothing(
    hub, website, clock, write_faults
):
    people = [await hub.visitors.create(website, "pytest") for _ in range(3)]
    before = [await stored_visit(hub, p.id) for p in people]
    write_faults.fail()  # the rows are updated … and rolled back
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        results = await asyncio.gather(
            *(hub.tracking.arrive(p, website, "https://shop.test/", "Home") for p in people),
            return_exceptions=True,
        )
        assert await drain(subscription) == []
    assert all(isinstance(r, Unavailable) for r in results)
    assert "The visit was not stored (the store failed: injected" in str(results[0])
    assert write_faults.failed == 1  # one transaction for the three, and it failed them all
    assert [await stored_visit(hub, p.id) for p in people] == before
    assert await hub.tracking.online() == []
    assert await hub.tracking.recent_pages(people[0].id) == []
    write_faults.heal()
    snapshot = await hub.tracking.arrive(people[0], website, "https://shop.test/", "Home")
    assert (snapshot["visit"], snapshot["pages"]) == (1, 1)


async def test_an_unknown_visitor_fails_alone_in_its_batch(hub, website, visitor):
    gone = replace(visitor, id="v_gone")
    results = await asyncio.gather(
        hub.tracking.arrive(gone, website),
        hub.tracking.arrive(visitor, website, "https://shop.test/", "Home"),
        return_exceptions=True,
    )
    assert isinstance(results[0], NotFound)
    assert results[1]["visit"] == 1 and results[1]["page"]["title"] == "Home"


async def test_page_views_stored_together_share_one_transaction_in_order(
    hub, website, visitor, transactions
):
    other = await hub.visitors.create(website, "pytest")
    for person in (visitor, other):
        await hub.tracking.arrive(person, website, "https://shop.test/", "Home")
    before = transactions["write"]
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        await asyncio.gather(
            hub.tracking.page_view(visitor, website, "https://shop.test/a", "A"),
            hub.tracking.page_view(other, website, "https://shop.test/x", "X"),
            hub.tracking.page_view(visitor, website, "https://shop.test/b", "B"),
        )
        published = [f["page_view"] for f in await drain(subscription)]
    assert transactions["write"] == before + 1
    trail = [(p.url, p.title) for p in reversed(await hub.tracking.recent_pages(visitor.id))]
    assert trail == [
        ("https://shop.test/", "Home"),
        ("https://shop.test/a", "A"),
        ("https://shop.test/b", "B"),
    ]
    stored = await hub.visitors.get(visitor.id)
    assert (stored.last_page_url, stored.last_page_title) == ("https://shop.test/b", "B")
    assert (await hub.visitors.get(other.id)).last_page_title == "X"
    ids = {p.url: p.id for p in await hub.tracking.recent_pages(visitor.id)}
    assert [(p["url"], p["id"]) for p in published if p["url"] in ids] == [
        ("https://shop.test/a", ids["https://shop.test/a"]),
        ("https://shop.test/b", ids["https://shop.test/b"]),
    ]


async def test_a_failed_page_view_batch_stores_and_shows_none_of_it(
    hub, website, visitor, write_faults
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    write_faults.fail()  # inserted … and rolled back
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        with pytest.raises(Unavailable, match="The page view was not stored"):
            await hub.tracking.page_view(visitor, website, "https://shop.test/lost", "Lost")
        assert await drain(subscription) == []
    assert write_faults.failed == 1
    assert [p.url for p in await hub.tracking.recent_pages(visitor.id)] == ["https://shop.test/"]
    assert (await hub.visitors.get(visitor.id)).last_page_title == "Home"
    assert (await hub.tracking.online())[0]["page"]["title"] == "Home"


async def test_a_page_view_of_an_unknown_visitor_fails_alone(hub, website, visitor):
    snapshot = await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    results = await asyncio.gather(
        hub.tracking.page_view(replace(visitor, id="v_gone"), website, "https://shop.test/x",
                               snapshot=dict(snapshot)),
        hub.tracking.page_view(visitor, website, "https://shop.test/a", "A"),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(results[0], NotFound)
    assert results[1]["page"]["title"] == "A"


async def test_a_visitor_is_last_seen_when_they_left_not_when_they_came(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    for _ in range(40):  # forty minutes on one page, the widget pinging
        clock.advance(60)
        await hub.tracking.heartbeat(visitor, website)
    left_at = datetime.fromtimestamp(clock(), UTC)
    await hub.tracking.left(visitor, website)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    assert (await stored_visit(hub, visitor.id))[2] == left_at
    clock.advance(VISIT_GAP_SECONDS - 60)  # 29 minutes after they left: the same visit
    assert (await hub.tracking.arrive(visitor, website))["visit"] == 1


async def test_being_marked_idle_or_shown_to_an_agent_is_not_being_seen(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    for _ in range(3):
        clock.advance(60)
        await hub.tracking.heartbeat(visitor, website)
    last_ping = datetime.fromtimestamp(clock(), UTC)
    clock.advance(1)
    await hub.tracking.sweep()  # idle now
    assert (await hub.tracking.online())[0]["state"] == "idle"
    clock.advance(5)
    await hub.tracking.refresh(visitor.id)  # (an agent started a chat with them)
    clock.advance(LEAVE_AFTER_SECONDS)
    await hub.tracking.sweep()
    assert await hub.tracking.online() == []
    assert (await stored_visit(hub, visitor.id))[2] == last_ping


async def test_departures_swept_together_share_one_transaction_and_never_move_last_seen_back(
    hub, website, clock, transactions
):
    people = [await hub.visitors.create(website, "pytest") for _ in range(4)]
    for person in people:
        await hub.tracking.arrive(person, website, "https://shop.test/", "Home")
        await hub.tracking.left(person, website)
    left_at = datetime.fromtimestamp(clock(), UTC)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    # Already back through another hub process, whose visit start stamped them now.
    async with hub.db.write() as conn:
        await conn.execute(
            visitors_table.update()
            .where(visitors_table.c.id == people[0].id)
            .values(last_seen_at=datetime.fromtimestamp(clock(), UTC))
        )
    before = transactions["write"]
    await hub.tracking.sweep()
    assert transactions["write"] == before + 1
    assert [(await stored_visit(hub, p.id))[2] for p in people] == [
        datetime.fromtimestamp(clock(), UTC),
        left_at,
        left_at,
        left_at,
    ]


async def test_a_failed_departure_write_stores_none_of_it_and_the_agents_hear_all_the_same(
    hub, website, visitor, clock, monkeypatch, caplog
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    clock.advance(60)
    await hub.tracking.heartbeat(visitor, website)
    await hub.tracking.left(visitor, website)
    before = await stored_visit(hub, visitor.id)
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    write = hub.db.write

    @contextlib.asynccontextmanager
    async def failing():  # type: ignore[no-untyped-def]
        async with write() as conn:
            yield conn  # written … and rolled back
            raise ConnectionResetError("injected: the store went away")

    monkeypatch.setattr(hub.db, "write", failing)
    async with hub.bus.subscribe(topics.site_visitors(website.id)) as subscription:
        await hub.tracking.sweep()
        left = await drain(subscription)
    monkeypatch.setattr(hub.db, "write", write)
    assert left == [{"type": "visitor_left", "visitor_id": visitor.id, "inbox_id": website.id}]
    assert "the departure of 1 visitors was not stored" in caplog.text
    assert await stored_visit(hub, visitor.id) == before
    assert (await hub.tracking.recent_pages(visitor.id))[0].seconds is None
    assert await hub.tracking.online() == []


async def test_a_stop_stores_when_the_visitors_online_were_last_seen_so_a_restart_goes_on(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    for _ in range(40):
        clock.advance(60)
        await hub.tracking.heartbeat(visitor, website)
    stopped_at = datetime.fromtimestamp(clock(), UTC)
    await hub.tracking.close()
    assert (await stored_visit(hub, visitor.id))[2] == stopped_at
    # The restarted process knows nobody; the widget reconnects a minute later.
    restarted = TrackingService(
        hub.db, hub.bus, MemoryPresence(clock), hub.settings.tracking_strip_params, 90
    )
    clock.advance(60)
    snapshot = await restarted.arrive(visitor, website, "https://shop.test/", "Home")
    await restarted.close()
    assert (snapshot["visit"], snapshot["pages"]) == (1, 1)


async def test_a_stop_goes_on_when_the_last_seen_times_cannot_be_stored(
    hub, website, visitor, clock, monkeypatch, caplog
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    before = await stored_visit(hub, visitor.id)
    clock.advance(60)
    await hub.tracking.heartbeat(visitor, website)

    @contextlib.asynccontextmanager
    async def unreachable():  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("injected: no store")
        yield

    monkeypatch.setattr(hub.db, "write", unreachable)
    await hub.tracking.close()
    monkeypatch.undo()
    assert "last-seen times of the visitors online were not stored" in caplog.text
    assert await stored_visit(hub, visitor.id) == before


async def test_two_processes_starting_one_visitors_visit_at_once_start_exactly_one(
    hub, website, visitor, clock
):
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await gone_for(hub, website, visitor, clock, VISIT_GAP_SECONDS + 60)
    # Two tabs on two nodes: each its own writer (transaction), neither sees the
    # other's presence yet.
    other = TrackingService(
        hub.db, hub.bus, MemoryPresence(clock), hub.settings.tracking_strip_params, 90
    )
    try:
        snapshots = await asyncio.gather(
            hub.tracking.arrive(visitor, website, "https://shop.test/a", "A"),
            other.arrive(visitor, website, "https://shop.test/b", "B"),
        )
    finally:
        await other.close()
    assert [(s["visit"], s["returning"]) for s in snapshots] == [(2, True), (2, True)]
    assert (await stored_visit(hub, visitor.id))[0] == 2
    assert {(p.visit, p.title) for p in await hub.tracking.recent_pages(visitor.id)} == {
        (1, "Home"),
        (2, "A"),
        (2, "B"),
    }
