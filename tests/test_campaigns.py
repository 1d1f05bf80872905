"""Proactive campaigns and business hours (hub.campaigns, hub.business_hours), both engines.

"Seconds on the page" is decided by a stand-in for asyncio.sleep that the
test releases, and business hours by the fake clock: nothing here waits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub.errors import InvalidInput
from hub.events import topics
from hub.inboxes.business_hours import BusinessHours, clean_schedule
from hub.models import AuthorType, Inbound
from hub.visitors.campaigns import clean_fields, url_matches
from tests.clock import START
from tests.engines import settings  # noqa: F401 - runs every test on both engines

PRICING = "https://shop.test/pricing"


class Timers:
    """Replaces CampaignService.sleep, its public hook for "N seconds on the page".

    Each armed campaign waits here until `release()`. `run_out()` waits for the next
    armed timer to start waiting and then for all it set off to end (shown, not shown
    or cancelled), so a test sees the outcome without sleeping.
    """

    def __init__(self) -> None:
        self.requested: list[float] = []
        self.cancelled = 0
        self._release = asyncio.Event()
        self._waiting: asyncio.Queue[asyncio.Task[object]] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        task = asyncio.current_task()
        assert task is not None
        self._waiting.put_nowait(task)
        try:
            await self._release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def release(self) -> None:
        self._release.set()

    async def started(self) -> asyncio.Task[object]:
        """The next armed timer, once it is waiting (fails instead of hanging if none is)."""
        async with asyncio.timeout(10):
            return await self._waiting.get()

    async def run_out(self) -> None:
        await asyncio.wait([await self.started()])

    async def armed(self) -> bool:
        """Whether what the test just did armed a timer. There is no event for "nothing
        was armed": one loop turn, in which a timer armed before this call starts waiting."""
        await asyncio.sleep(0)
        return not self._waiting.empty()


@pytest.fixture
def timers(hub) -> Timers:  # type: ignore[no-untyped-def]
    fake = Timers()
    hub.campaigns.sleep = fake
    return fake


def fields(**overrides):  # type: ignore[no-untyped-def]
    return {
        "name": "Pricing help",
        "message": "Questions about our plans?",
        "sender_name": "Sales team",
        "url_match": "prefix",
        "url_pattern": "/pricing",
        "min_seconds": 30,
        "audience": "all",
        **overrides,
    }


async def shown_after_the_timer(hub, timers, campaign) -> int:  # type: ignore[no-untyped-def]
    """Let the next armed timer run its course; then how often the campaign has been shown."""
    await timers.run_out()
    return (await hub.campaigns.get(campaign.id)).shown


@pytest.fixture
async def visitor(hub, website):  # type: ignore[no-untyped-def]
    return await hub.visitors.create(website, "pytest")


# ---- rules as pure functions ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pattern", "url", "expected"),
    [
        ("exact", "/pricing", "https://shop.test/pricing", True),
        ("exact", "/pricing", "https://shop.test/pricing/", True),
        ("exact", "/pricing", "https://shop.test/pricing/team", False),
        ("exact", "https://shop.test/", "https://shop.test/", True),
        ("exact", "https://shop.test/", "https://other.test/", False),
        ("prefix", "/pricing", "https://shop.test/pricing/team?x=1", True),
        ("prefix", "/pricing", "https://shop.test/about", False),
        ("prefix", "https://shop.test/blog", "https://shop.test/blog/post", True),
        ("wildcard", "/p/*/reviews", "https://shop.test/p/shoes/reviews", True),
        ("wildcard", "/p/*/reviews", "https://shop.test/p/shoes", False),
        ("wildcard", "*", "https://shop.test/anything", True),
        ("wildcard", "/a.b", "https://shop.test/axb", False),  # only * is special
    ],
)
def test_url_rules(kind, pattern, url, expected):
    assert url_matches(kind, pattern, url) is expected


def test_the_path_rule_ignores_the_fragment():
    assert url_matches("exact", "/pricing", "https://shop.test/pricing#faq")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"url_match": "regex"}, "exact, prefix or wildcard"),
        ({"audience": "vip"}, "all, new or returning"),
        ({"min_seconds": -1}, "0 to 3600"),
        ({"min_seconds": "soon"}, "whole number"),
        ({"url_pattern": "pricing"}, "starts with /"),
        ({"message": ""}, "message must not be empty"),
        ({"message": "x" * 1001}, "longer than 1000"),
        ({"sender_name": ""}, "sender must not be empty"),
    ],
)
def test_bad_campaign_fields_are_refused_with_the_reason(override, message):
    with pytest.raises(InvalidInput, match=message):
        clean_fields(fields(**override))


def test_business_hours_follow_the_inbox_time_zone():
    hours = BusinessHours(1, "Europe/Oslo", {"mon": [("09:00", "12:00"), ("13:00", "17:00")]})
    oslo = [  # Monday 23 November 2026; Oslo is UTC+1 in winter
        (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 11, 30, tzinfo=UTC), False),  # lunch
        (datetime(2026, 11, 23, 15, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 16, 0, tzinfo=UTC), False),
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), False),  # Tuesday: closed
    ]
    assert [hours.is_open(at) for at, _ in oslo] == [open_ for _, open_ in oslo]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"funday": []}, "unknown day"),
        ({"mon": [["9:00", "17:00"]]}, "HH:MM"),
        ({"mon": [["17:00", "09:00"]]}, "before"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["09:00", "10:00"]] * 5}, "at most 4"),
        ([], "map days"),
    ],
)
def test_bad_schedules_are_refused(schedule, message):
    with pytest.raises(InvalidInput, match=message):
        clean_schedule(schedule)


async def test_unknown_time_zone_is_refused_and_nothing_is_stored(hub, website):
    with pytest.raises(InvalidInput, match="time zone"):
        await hub.business_hours.set(website.id, "Mars/Olympus", {})
    assert await hub.business_hours.get(website.id) is None


# ---- matching against live visitors ------------------------------------------------------


async def test_fires_after_the_seconds_on_the_matching_page_once_per_visitor(
    hub, website, visitor, timers, clock
):
    campaign = await hub.campaigns.create(website.id, fields(min_seconds=30))
    async with hub.bus.subscribe(topics.visitor_channel(visitor.id)) as subscription:
        await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
        armed = await timers.started()
        assert timers.requested == [30]
        assert (await hub.campaigns.get(campaign.id)).shown == 0  # not before the seconds
        timers.release()
        await asyncio.wait([armed])
        assert (await hub.campaigns.get(campaign.id)).shown == 1
        frame = (await subscription.get()).json()
    assert frame["type"] == "campaign"
    assert frame["campaign"]["id"] == campaign.id
    assert frame["campaign"]["text"] == "Questions about our plans?"
    assert frame["campaign"]["author"] == {"type": "campaign", "name": "Sales team"}
    # Same page again later: already shown to this visitor.
    await hub.tracking.page_view(visitor, website, PRICING + "/team", "Team pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 1


async def test_moving_on_before_the_seconds_are_up_shows_nothing(hub, website, visitor, timers):
    campaign = await hub.campaigns.create(website.id, fields(min_seconds=30))
    await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
    armed = await timers.started()
    await hub.tracking.page_view(visitor, website, "https://shop.test/about", "About")
    timers.release()
    await asyncio.wait([armed])
    assert timers.cancelled == 1
    assert (await hub.campaigns.get(campaign.id)).shown == 0


async def test_other_pages_and_disabled_campaigns_arm_nothing(hub, website, visitor, timers):
    await hub.campaigns.create(website.id, fields())
    await hub.campaigns.create(website.id, fields(url_pattern="/about", enabled=False))
    await hub.tracking.arrive(visitor, website, "https://shop.test/about", "About")
    assert not await timers.armed()
    assert timers.requested == []


@pytest.mark.parametrize(("audience", "shown_on_visit"), [("new", [1]), ("returning", [2])])
async def test_new_or_returning_visitors(
    hub, website, visitor, timers, clock, audience, shown_on_visit
):
    campaign = await hub.campaigns.create(website.id, fields(audience=audience, min_seconds=0))
    timers.release()
    armed: list[int] = []
    shown: list[int] = []
    for visit in (1, 2):
        await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
        if await timers.armed():  # the audience decides whether the visit arms the campaign
            armed.append(visit)
            await timers.run_out()
        if (await hub.campaigns.get(campaign.id)).shown > len(shown):
            shown.append(visit)
        await hub.tracking.left(visitor, website)
        clock.advance(31 * 60)
        await hub.tracking.sweep()
    assert armed == shown == shown_on_visit


async def test_only_when_an_agent_is_online(hub, website, visitor, timers, agent):
    campaign = await hub.campaigns.create(
        website.id, fields(agents_online_only=True, min_seconds=0)
    )
    timers.release()
    await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 0
    await hub.presence.connected(agent.id)
    await hub.tracking.page_view(visitor, website, PRICING + "?plan=pro", "Pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 1


async def test_only_during_business_hours(hub, website, visitor, timers, clock):
    campaign = await hub.campaigns.create(
        website.id, fields(business_hours_only=True, min_seconds=0)
    )
    # START is Monday 10:00 UTC = 11:00 in Oslo.
    await hub.business_hours.set(website.id, "Europe/Oslo", {"mon": [["12:00", "17:00"]]})
    timers.release()
    await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 0
    clock.advance(3600)
    await hub.tracking.page_view(visitor, website, PRICING + "/team", "Team")
    assert await shown_after_the_timer(hub, timers, campaign) == 1
    assert datetime.fromtimestamp(START + 3600, UTC).hour == 11


async def test_a_visitor_who_is_already_chatting_is_not_interrupted(hub, website, visitor, timers):
    campaign = await hub.campaigns.create(website.id, fields(min_seconds=0))
    await hub.conversations.ingest(Inbound.web_chat(website.id, "hi", "c-1", visitor_id=visitor.id))
    timers.release()
    await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 0


async def test_a_reply_becomes_a_conversation_that_records_the_campaign(
    hub, website, visitor, timers
):
    campaign = await hub.campaigns.create(website.id, fields(min_seconds=0))
    timers.release()
    await hub.tracking.arrive(visitor, website, PRICING, "Pricing")
    assert await shown_after_the_timer(hub, timers, campaign) == 1
    posted = await hub.conversations.ingest(
        Inbound.web_chat(
            website.id,
            "Is there a discount?",
            "c-1",
            visitor_id=visitor.id,
            campaign_id=campaign.id,
        )
    )
    messages = await hub.conversations.messages(posted.conversation.id)
    assert [(m.author_type, m.author_name, m.text) for m in messages] == [
        (AuthorType.CAMPAIGN, "Sales team", "Questions about our plans?"),
        (AuthorType.VISITOR, None, "Is there a discount?"),
    ]
    async with hub.db.read() as conn:
        from sqlalchemy import select

        from storage.tables import conversations

        recorded = await conn.scalar(
            select(conversations.c.campaign_id).where(conversations.c.id == posted.conversation.id)
        )
    assert recorded == campaign.id
    stats = await hub.campaigns.get(campaign.id)
    assert (stats.shown, stats.replied) == (1, 1)
    # A second reply goes to the same conversation and counts once.
    again = await hub.conversations.ingest(
        Inbound.web_chat(
            website.id, "Hello?", "c-2", visitor_id=visitor.id, campaign_id=campaign.id
        )
    )
    assert again.conversation.id == posted.conversation.id
    assert (await hub.campaigns.get(campaign.id)).replied == 1


async def test_a_campaign_id_that_was_never_shown_to_the_visitor_is_ignored(hub, website, visitor):
    campaign = await hub.campaigns.create(website.id, fields())
    posted = await hub.conversations.ingest(
        Inbound.web_chat(website.id, "hi", "c-1", visitor_id=visitor.id, campaign_id=campaign.id)
    )
    messages = await hub.conversations.messages(posted.conversation.id)
    assert [m.author_type for m in messages] == [AuthorType.VISITOR]
    assert (await hub.campaigns.get(campaign.id)).replied == 0


async def test_campaigns_on_an_unknown_inbox_are_refused(hub):
    with pytest.raises(InvalidInput, match="no inbox"):
        await hub.campaigns.create(999, fields())
    assert await hub.campaigns.list() == []
