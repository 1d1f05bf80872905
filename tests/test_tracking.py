"""Live visitors' store and presence (hub.tracking) on SQLite and on PostgreSQL.

Time is a fake clock: idle, leave and "seconds on page" are decided by
advancing it, never by waiting.
"""

from __future__ import annotations

import pytest

from hub import events
from hub.errors import InvalidInput, TooLarge
from hub.models import ContactDetails, Inbound
from hub.visitor_presence import (
    IDLE_AFTER_SECONDS,
    LEAVE_AFTER_SECONDS,
    RECONNECT_GRACE_SECONDS,
)
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
    while not subscription._queue.empty():
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
    async with hub.bus.subscribe(events.VISITORS) as subscription:
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
    async with hub.bus.subscribe(events.VISITORS) as subscription:
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
    async with hub.bus.subscribe(events.VISITORS) as subscription:
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
        Inbound(
            website.id,
            "hi",
            "c-1",
            visitor_id=visitor.id,
            contact=ContactDetails(email="ada@example.com"),
        )
    )
    await hub.tracking.refresh(visitor.id)
    live = (await hub.tracking.online())[0]
    assert live["known"] is True and live["contact"]["email"] == "ada@example.com"
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
