"""A widget visitor's visits over real websockets, on both engines.

A visitor who comes back after more than VISIT_GAP_SECONDS away starts their
next visit; one who comes back sooner goes on with the same one. "Away" is
measured from when the visitor was last seen on the site (the page closed, or
the last heartbeat), to the hello that brings them back, as that hello found
the store: nothing this connection writes may decide it. Time is a fake
clock (tests/clock.py) that the test moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hub.ratelimit import LocalLimiter
from hub.visitors.presence import LEAVE_AFTER_SECONDS, RECONNECT_GRACE_SECONDS
from hub.visitors.trail import VISIT_GAP_SECONDS
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
HOME = "https://shop.test/"
MINUTE = 60


def widget(live_server, inbox):  # type: ignore[no-untyped-def]
    return WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN)


async def hello(client, token=None, url=HOME, track=True):  # type: ignore[no-untyped-def]
    """The welcome; the hub starts the visit after sending it (a round trip, such as
    `ping`, waits for that)."""
    page = {"url": url, "title": url.rsplit("/", 1)[-1] or "Home"}
    await client.send(
        {"type": "hello", "visitor_token": token, "last_seq": 0, "track": track, "page": page}
    )
    return await client.recv_type("welcome")


async def leave(client) -> None:  # type: ignore[no-untyped-def]
    """The page closes: `leave`, and a round trip that brings nothing back (as `ping`
    would), so the hub has handled it when this returns."""
    await client.send({"type": "leave"})
    await client.send({"type": "read", "seq": "x"})
    await client.recv_type("error")


async def stay(client, clock, minutes: int) -> None:  # type: ignore[no-untyped-def]
    """On the same page for `minutes`, the widget pinging as it does (its heartbeat)."""
    for _ in range(minutes):
        clock.advance(MINUTE)
        await client.ping()


async def away(hub, clock, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """`seconds` pass after the visitor left; the hub sweeps them out on the way."""
    clock.advance(RECONNECT_GRACE_SECONDS + 1)
    await hub.tracking.sweep()
    assert await hub.tracking.online() == []
    clock.advance(seconds - RECONNECT_GRACE_SECONDS - 1)


def at(clock) -> datetime:  # type: ignore[no-untyped-def]
    return datetime.fromtimestamp(clock(), UTC)


async def stored(hub, visitor_id):  # type: ignore[no-untyped-def]
    """(visit count, visit started, last seen) as stored, in UTC."""
    row = await hub.visitors.get(visitor_id)
    return (
        row.visit_count,
        row.visit_started_at.replace(tzinfo=row.visit_started_at.tzinfo or UTC),
        row.last_seen_at.replace(tzinfo=row.last_seen_at.tzinfo or UTC),
    )


async def trail(hub, visitor_id):  # type: ignore[no-untyped-def]
    """(visit, url) of every stored page view, oldest first."""
    return [(p.visit, p.url) for p in reversed(await hub.tracking.recent_pages(visitor_id, 100))]


async def first_visit(live_server, website, clock, minutes=0):  # type: ignore[no-untyped-def]
    """A new visitor on HOME for `minutes`, then gone; their welcome and when they left."""
    async with widget(live_server, website) as client:
        welcome = await hello(client)
        await client.ping()
        await stay(client, clock, minutes)
        await leave(client)
    return welcome, at(clock)


@pytest.mark.parametrize(
    ("minutes_on_site", "minutes_away", "visit"),
    [(0, 29, 1), (0, 31, 2), (40, 29, 1), (40, 31, 2)],
)
async def test_a_visitor_back_after_the_gap_starts_the_next_visit_and_sooner_goes_on(
    live_server, website, clock, minutes_on_site, minutes_away, visit
):
    hub = live_server.hub
    first, left_at = await first_visit(live_server, website, clock, minutes_on_site)
    visitor_id = first["visitor_id"]
    await away(hub, clock, minutes_away * MINUTE)
    (_, started, last_seen) = await stored(hub, visitor_id)
    assert last_seen == left_at  # seen until they left, not only when they came
    async with widget(live_server, website) as client:
        again = await hello(client, first["visitor_token"], HOME + "again")
        await client.ping()
        [live] = await hub.tracking.online()
        assert again["visitor_id"] == visitor_id
        now = at(clock)
        assert (live["visit"], live["visit_count"], live["returning"]) == (
            visit,
            visit,
            visit > 1,
        )
        assert live["site_since"] == (now if visit > 1 else started).isoformat()
        assert live["pages"] == (1 if visit > 1 else 2)
        assert await stored(hub, visitor_id) == (visit, now if visit > 1 else started, now)
        assert await trail(hub, visitor_id) == [(1, HOME), (visit, HOME + "again")]


async def test_the_console_shows_the_next_visit_as_a_returning_visitor(
    live_server, website, clock, as_agent
):
    hub = live_server.hub
    first, _ = await first_visit(live_server, website, clock)
    for visit in (2, 3):
        await away(hub, clock, VISIT_GAP_SECONDS + MINUTE)
        async with widget(live_server, website) as client:
            await hello(client, first["visitor_token"], f"{HOME}visit-{visit}")
            await client.ping()
            listed = (await as_agent.http.get("/console/api/visitors")).json()["visitors"]
            detail = await as_agent.http.get(f"/console/api/visitors/{first['visitor_id']}")
            detail = detail.json()
            await leave(client)
        assert [(v["visit"], v["visit_count"], v["returning"]) for v in listed] == [
            (visit, visit, True)
        ]
        assert detail["visit_count"] == visit and detail["live"]["visit"] == visit
        assert [v["visit"] for v in detail["visits"]] == list(range(visit, 0, -1))
        assert detail["visits"][0]["pages"][0]["url"] == f"{HOME}visit-{visit}"


@pytest.mark.parametrize(("minutes_away", "visit"), [(29, 1), (31, 2)])
async def test_tabs_opened_together_make_one_visit(
    live_server, website, clock, minutes_away, visit
):
    hub = live_server.hub
    first, _ = await first_visit(live_server, website, clock)
    await away(hub, clock, minutes_away * MINUTE)
    async with widget(live_server, website) as tab1, widget(live_server, website) as tab2:
        welcomes = await asyncio.gather(
            hello(tab1, first["visitor_token"], HOME + "a"),
            hello(tab2, first["visitor_token"], HOME + "b"),
        )
        await tab1.ping()
        await tab2.ping()
        [live] = await hub.tracking.online()
    assert {w["visitor_id"] for w in welcomes} == {first["visitor_id"]}
    assert (live["visit"], live["returning"]) == (visit, visit > 1)
    assert (await stored(hub, first["visitor_id"]))[0] == visit
    assert sorted(await trail(hub, first["visitor_id"])) == [
        (1, HOME),
        (visit, HOME + "a"),
        (visit, HOME + "b"),
    ]


@pytest.fixture
def no_address_limits(live_server, monkeypatch):  # type: ignore[no-untyped-def]
    """Every test socket comes from 127.0.0.1; many visitors need more than one address's share."""
    limits = live_server.app.state.webchat_limits
    monkeypatch.setattr(limits, "handshakes", LocalLimiter(rate=1000.0, burst=1000))
    monkeypatch.setattr(limits.connections, "limit", 1000)


async def test_visitors_returning_together_share_a_batch_and_each_is_decided_alone(
    live_server, website, clock, monkeypatch, no_address_limits
):
    hub = live_server.hub
    early = [await first_visit(live_server, website, clock) for _ in range(6)]
    clock.advance(2 * MINUTE)
    late = [await first_visit(live_server, website, clock) for _ in range(6)]
    await away(hub, clock, VISIT_GAP_SECONDS - MINUTE)  # the late ones: 29 minutes, the early 31
    people = [welcome for welcome, _ in early + late]
    # A hello that finds its visitor not online queues its visit's start at once, with no
    # wait between: once all have looked, all are queued.
    get, looked, every_start_queued = hub.tracking.presence.get, [], asyncio.Event()

    async def counted(site, visitor):  # type: ignore[no-untyped-def]
        snapshot = await get(site, visitor)
        if snapshot is None:
            looked.append(visitor)
            if len(looked) == len(people):
                every_start_queued.set()
        return snapshot

    write, visit_writes = hub.db.write, []

    @contextlib.asynccontextmanager
    async def held():  # type: ignore[no-untyped-def]
        # A write begun before every start is queued (the first visits') waits for them
        # to queue behind it; the visits' transactions are told by the statement that
        # stores the visit counts (observed with SQLAlchemy's public events).
        async with asyncio.timeout(10):
            await every_start_queued.wait()
        statements: list[str] = []

        def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        async with write() as conn:
            sa.event.listen(conn.sync_connection, "before_cursor_execute", seen)
            try:
                yield conn
            finally:
                sa.event.remove(conn.sync_connection, "before_cursor_execute", seen)
        if any(s.startswith("UPDATE visitors SET") and "visit_count=" in s for s in statements):
            visit_writes.append(statements)

    monkeypatch.setattr(hub.tracking.presence, "get", counted)
    monkeypatch.setattr(hub.db, "write", held)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(widget(live_server, website)) for _ in people]
        await asyncio.gather(
            *(
                hello(client, person["visitor_token"], HOME + "back")
                for client, person in zip(clients, people, strict=True)
            )
        )
        for client in clients:
            await client.ping()
        live = {v["id"]: v["visit"] for v in await hub.tracking.online()}
    assert len(looked) == len(people)
    # Every visit decided (below), in fewer transactions than visitors: some shared one.
    assert 1 <= len(visit_writes) < len(people)
    expected = {p["visitor_id"]: 2 for p in people[:6]} | {p["visitor_id"]: 1 for p in people[6:]}
    assert live == expected
    for person in people:
        assert (await stored(hub, person["visitor_id"]))[0] == expected[person["visitor_id"]]


async def test_a_failed_visit_start_stores_nothing_and_the_next_ping_starts_the_next_visit(
    live_server, website, clock, write_faults
):
    hub = live_server.hub
    first, _ = await first_visit(live_server, website, clock)
    await away(hub, clock, VISIT_GAP_SECONDS + MINUTE)
    before = await stored(hub, first["visitor_id"])
    write_faults.fail()  # the hello's first write is its visit's: written … and rolled back
    async with widget(live_server, website) as client:
        welcome = await hello(client, first["visitor_token"], HOME + "again")
        async with asyncio.timeout(5):
            await write_faults.one_failed.wait()
        await client.send({"type": "read", "seq": "x"})  # (the hello is handled)
        await client.recv_type("error")
        assert welcome["visitor_id"] == first["visitor_id"]  # the chat goes on
        assert await hub.tracking.online() == []
        assert await stored(hub, first["visitor_id"]) == before  # nothing of it stored
        write_faults.heal()
        clock.advance(5)
        await client.ping()  # the heartbeat starts the visit: still the next one
        [live] = await hub.tracking.online()
    assert (live["visit"], live["returning"]) == (2, True)
    assert await stored(hub, first["visitor_id"]) == (2, at(clock), at(clock))


async def test_an_untracked_return_counts_no_visit_and_a_tracked_one_after_it_does(
    live_server, website, clock
):
    hub = live_server.hub
    first, _ = await first_visit(live_server, website, clock)
    await away(hub, clock, VISIT_GAP_SECONDS + MINUTE)
    async with widget(live_server, website) as client:
        await hello(client, first["visitor_token"], HOME + "private", track=False)
        await client.ping()
        assert await hub.tracking.online() == []
    count, started, last_seen = await stored(hub, first["visitor_id"])
    assert count == 1  # not tracked: no visit
    assert last_seen > started  # but seen (the console's "Last seen")


async def test_a_visitor_whose_heartbeats_stopped_is_seen_until_the_last_one(
    live_server, website, clock
):
    hub = live_server.hub
    async with widget(live_server, website) as client:
        first = await hello(client)
        await client.ping()
        await stay(client, clock, 20)
        last_ping = at(clock)
        clock.advance(LEAVE_AFTER_SECONDS + 1)  # the laptop slept; the socket is still open
        await hub.tracking.sweep()
        assert await hub.tracking.online() == []
        assert (await stored(hub, first["visitor_id"]))[2] == last_ping
        clock.advance(25 * MINUTE)
        await client.ping()  # awake again, 25 minutes after the last ping: the same visit
        [live] = await hub.tracking.online()
    assert live["visit"] == 1
