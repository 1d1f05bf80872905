"""Navigation frames of the widget protocol (docs/widget-protocol.md) over a real websocket."""

from __future__ import annotations

import asyncio

from channels.webchat import tracking
from hub.events import topics
from hub.models import AuthorType
from hub.visitors.presence import RECONNECT_GRACE_SECONDS
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
HOME = "https://shop.test/"


def widget(live_server, inbox):  # type: ignore[no-untyped-def]
    return WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN)


async def hello(client, url=HOME, title="Home", track=True, **extra):  # type: ignore[no-untyped-def]
    page = {"url": url, "title": title, **extra}
    await client.send({"type": "hello", "visitor_token": None, "track": track, "page": page})
    return await client.recv_type("welcome")


async def pages(hub, visitor_id):  # type: ignore[no-untyped-def]
    return [(p.url, p.title) for p in reversed(await hub.tracking.recent_pages(visitor_id, 100))]


async def test_hello_and_spa_navigation_store_the_trail_and_reach_agents(live_server, website):
    hub = live_server.hub
    async with (
        hub.bus.subscribe(topics.site_visitors(website.id)) as agents,
        widget(live_server, website) as c,
    ):
        welcome = await hello(c, referrer="https://search.test/?q=shoes")
        await c.send(
            {"type": "page", "url": HOME + "pricing", "title": "Pricing", "referrer": HOME}
        )
        await c.send({"type": "page", "url": HOME + "pricing#team", "title": "Team"})
        await c.ping()
        seen = []
        while len(seen) < 3:
            frame = (await asyncio.wait_for(agents.get(), 5)).json()
            if frame["type"] == "visitor" and frame["page_view"]:
                seen.append(frame["page_view"]["title"])
    assert seen == ["Home", "Pricing", "Team"]
    assert await pages(hub, welcome["visitor_id"]) == [
        (HOME, "Home"),
        (HOME + "pricing", "Pricing"),
        (HOME + "pricing#team", "Team"),
    ]
    assert frame["visitor"]["source"] == "search.test"


async def test_do_not_track_stores_no_trail_and_chat_still_works(live_server, website):
    hub = live_server.hub
    async with (
        hub.bus.subscribe(topics.site_visitors(website.id)) as agents,
        widget(live_server, website) as c,
    ):
        welcome = await hello(c, url=HOME + "secret-page", track=False)
        await c.send({"type": "page", "url": HOME + "other", "title": "Other"})
        await c.send({"type": "visibility", "visible": False})
        ack = await c.say("Hello without tracking", "c-1")
        await c.ping()
        assert agents.pending() == 0  # no visitor event at all
    assert ack["type"] == "ack"
    assert await pages(hub, welcome["visitor_id"]) == []
    assert await hub.tracking.online() == []
    visitor = await hub.visitors.get(welcome["visitor_id"])
    assert visitor.last_page_url is None


async def test_secret_parameters_are_stripped_over_the_wire(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        welcome = await hello(c, url=HOME + "reset?token=abc&password=x&lang=en")
        await c.send({"type": "page", "url": HOME + "me?email=ada%40example.com&tab=2"})
        await c.ping()
    assert [u for u, _ in await pages(hub, welcome["visitor_id"])] == [
        HOME + "reset?lang=en",
        HOME + "me?tab=2",
    ]
    visitor = await hub.visitors.get(welcome["visitor_id"])
    assert visitor.last_page_url == HOME + "me?tab=2"


async def test_bad_page_frames_get_a_clear_error_and_store_nothing(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        welcome = await hello(c)
        bad = [
            ({"type": "page", "url": "javascript:alert(1)"}, "invalid", "http or https"),
            ({"type": "page", "url": HOME + "x" * 2001}, "invalid", "at most 2000"),
            ({"type": "page", "url": HOME, "title": "t" * 301}, "invalid", "at most 300"),
            ({"type": "page"}, "invalid", "url is required"),
            ({"type": "page", "url": ["https://shop.test/"]}, "invalid", "string"),
            ({"type": "visibility", "visible": "no"}, "invalid", "true or false"),
        ]
        for frame, code, words in bad:
            await c.send(frame)
            error = await c.recv_type("error")
            assert (error["code"], words in error["message"]) == (code, True), error
    assert await pages(hub, welcome["visitor_id"]) == [(HOME, "Home")]


async def test_a_bad_address_in_hello_is_refused_but_the_visitor_is_online(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        welcome = await hello(c, url="javascript:alert(1)")
        error = await c.recv_type("error")
        await c.ping()
        online = await hub.tracking.online()
    assert error["code"] == "invalid"
    assert [v["id"] for v in online] == [welcome["visitor_id"]]
    assert online[0]["page"] is None


async def test_a_flood_of_page_views_is_dropped_for_that_visitor_only(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as flooder, widget(live_server, website) as calm:
        noisy = await hello(flooder)
        quiet = await hello(calm)
        for n in range(40):
            await flooder.send({"type": "page", "url": f"{HOME}p/{n}", "title": str(n)})
        await flooder.ping()
        await calm.send({"type": "page", "url": HOME + "calm", "title": "Calm"})
        await calm.ping()
    stored = await pages(hub, noisy["visitor_id"])
    # The hello's page plus the burst; the rest was refused with rate_limited.
    assert len(stored) == 1 + tracking.PAGE_BURST
    assert await pages(hub, quiet["visitor_id"]) == [(HOME, "Home"), (HOME + "calm", "Calm")]


async def test_pings_are_heartbeats_and_leave_ends_the_visit_after_the_grace(
    live_server, website, clock
):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        welcome = await hello(c)
        clock.advance(60)
        await c.ping()
        clock.advance(60)
        await hub.tracking.sweep()
        assert [v["id"] for v in await hub.tracking.online()] == [welcome["visitor_id"]]
        await c.send({"type": "leave"})
        await c.send({"type": "visibility", "visible": False})  # ignored after leave
        await c.send({"type": "leave"})  # once only
        await c.send({"type": "read", "seq": "x"})  # a round trip with no effect
        await c.recv_type("error")
        clock.advance(RECONNECT_GRACE_SECONDS + 1)
        await hub.tracking.sweep()
        assert await hub.tracking.online() == []
        await c.ping()  # the page came back from the browser's cache: online again
        assert [v["id"] for v in await hub.tracking.online()] == [welcome["visitor_id"]]


async def test_visibility_frames_show_a_hidden_tab(live_server, website):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        await hello(c)
        await c.send({"type": "visibility", "visible": False})
        await c.ping()
        assert (await hub.tracking.online())[0]["state"] == "hidden"


async def test_a_campaign_reaches_the_widget_and_its_reply_starts_a_conversation(
    live_server, website
):
    hub = live_server.hub
    campaign = await hub.campaigns.create(
        website.id,
        {
            "name": "Help",
            "message": "Need a hand?",
            "sender_name": "Sales team",
            "url_match": "exact",
            "url_pattern": "/pricing",
            "min_seconds": 0,
        },
    )
    async with widget(live_server, website) as c:
        await hello(c)
        await c.send({"type": "page", "url": HOME + "pricing", "title": "Pricing"})
        shown = await c.recv_type("campaign")
        ack = await c.say("Yes please", "c-1", campaign_id=campaign.id)
    assert shown["campaign"]["text"] == "Need a hand?"
    messages = await hub.conversations.messages(ack["conversation_id"])
    assert [(m.author_type, m.text) for m in messages] == [
        (AuthorType.CAMPAIGN, "Need a hand?"),
        (AuthorType.VISITOR, "Yes please"),
    ]
    assert ack["seq"] == 2


async def test_an_agents_proactive_chat_opens_the_widget(live_server, website, agent):
    hub = live_server.hub
    async with widget(live_server, website) as c:
        welcome = await hello(c)
        await hub.conversations.start_proactive(agent, welcome["visitor_id"], "Hi there!")
        conversation = await c.recv_type("conversation")
        message = await c.recv_type("message")
        opened = await c.recv_type("open")
    assert conversation["conversation"]["assignee"] == {"name": "Sam Agent"}
    assert message["message"]["text"] == "Hi there!"
    assert message["message"]["author"] == {"type": "agent", "name": "Sam Agent"}
    assert opened == {"type": "open"}
