"""Visitor tokens expire (HUB_VISITOR_TOKEN_DAYS, 30 by default) and every welcome
renews them, over a real widget socket on a clock the test moves."""

from __future__ import annotations

import logging

import pytest
from websockets.exceptions import ConnectionClosed

from channels.webchat import protocol
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
DAY = 86400


def widget(live_server, inbox):  # type: ignore[no-untyped-def]
    return WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN)


async def test_a_token_in_use_is_renewed_and_an_unused_one_expires(live_server, website, clock):
    async with widget(live_server, website) as client:
        first = await client.hello()
        await client.say("hello?", "c1")
    clock.advance(20 * DAY)
    async with widget(live_server, website) as client:
        renewed = await client.hello(first["visitor_token"])
    assert renewed["visitor_id"] == first["visitor_id"]
    assert renewed["visitor_token"] != first["visitor_token"]
    assert "token_expired" not in renewed
    clock.advance(20 * DAY)  # 40 days after the first token, 20 after the renewed one
    async with widget(live_server, website) as client:
        kept = await client.hello(renewed["visitor_token"])
    async with widget(live_server, website) as client:
        unrenewed = await client.hello(first["visitor_token"])
    assert kept["visitor_id"] == first["visitor_id"]
    assert [m["text"] for m in kept["messages"]] == ["hello?"]
    # Without the renewal the visitor would have been forgotten by now.
    assert unrenewed["token_expired"] is True


async def test_an_expired_token_starts_a_new_visitor_without_an_error(
    live_server, website, clock, caplog
):
    async with widget(live_server, website) as client:
        old = await client.hello()
        await client.say("hello?", "c1")
    clock.advance(30 * DAY + 1)
    caplog.set_level(logging.INFO)
    async with widget(live_server, website) as client:
        welcome = await client.hello(old["visitor_token"])
        # The socket is live: the new visitor can chat at once.
        ack = await client.say("still there?", "c2")
    assert welcome["token_expired"] is True
    assert welcome["visitor_id"] != old["visitor_id"]
    assert (welcome["conversation"], welcome["messages"]) == (None, [])
    assert ack["type"] == "ack"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    async with widget(live_server, website) as client:
        again = await client.hello(welcome["visitor_token"])
    assert again["visitor_id"] == welcome["visitor_id"] and "token_expired" not in again


@pytest.mark.parametrize("age_days", [0, 31])
async def test_a_forged_token_is_refused_young_or_old(live_server, website, clock, age_days):
    async with widget(live_server, website) as client:
        token = (await client.hello())["visitor_token"]
    clock.advance(age_days * DAY)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    async with widget(live_server, website) as client:
        await client.send({"type": "hello", "visitor_token": forged, "last_seq": 0})
        error = await client.recv()
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert error["code"] == "bad_token"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == protocol.CLOSE_BAD_TOKEN


async def test_an_expired_token_of_another_site_is_refused(live_server, website, clock):
    other = await live_server.hub.inboxes.create_website("Other shop", [ORIGIN])
    async with widget(live_server, other) as client:
        token = (await client.hello())["visitor_token"]
    clock.advance(31 * DAY)
    async with widget(live_server, website) as client:
        await client.send({"type": "hello", "visitor_token": token, "last_seq": 0})
        assert (await client.recv())["code"] == "bad_token"
