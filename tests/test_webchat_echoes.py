"""A visitor's own message is acked to the socket that sent it, not echoed back to it."""

from __future__ import annotations

from typing import Any

from channels.webchat import echoes
from channels.webchat.echoes import OwnEchoes
from hub.events import topics
from hub.events.bus import Event
from hub.events.json_text import compact
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
CHANNEL = topics.visitor_channel("v_1")


def message_event(client_id: str | None, direction: str = "in", text: str = "hi") -> Event:
    message: dict[str, Any] = {"seq": 1, "direction": direction, "text": text}
    message["client_id"] = client_id
    return Event(CHANNEL, compact({"type": "message", "message": message}))  # as the bus does


def typing_event() -> Event:
    return Event(CHANNEL, '{"type":"typing","typing":true}')


# ---- the bookkeeping -------------------------------------------------------------------------


def test_nothing_expected_leaves_every_group_as_it_is() -> None:
    assert OwnEchoes().without([message_event("c-1")]) is None


def test_the_echo_of_an_expected_message_is_left_out_once_delivered() -> None:
    own = OwnEchoes()
    own.expect("c-1")
    other, echo, typing = message_event("c-2"), message_event("c-1"), typing_event()
    kept, matched = own.without([other, echo, typing])
    assert kept == [other, typing]
    assert own.without([echo]) is not None  # not delivered yet: still expected
    own.delivered(matched)
    assert own.without([echo]) is None


def test_an_agents_message_is_never_taken_for_an_echo() -> None:
    own = OwnEchoes()
    own.expect("c-1")
    assert own.without([message_event("c-1", direction="out")]) is None


def test_a_client_id_inside_a_message_text_does_not_match() -> None:
    own = OwnEchoes()
    own.expect("c-1")
    assert own.without([message_event("c-9", text='"client_id":"c-1"')]) is None


def test_client_ids_that_json_escapes_still_match() -> None:
    own = OwnEchoes()
    own.expect('quote"é')
    assert own.without([message_event('quote"é')]) is not None


def test_forgotten_and_missing_client_ids_expect_nothing() -> None:
    own = OwnEchoes()
    own.expect(None)
    own.expect("c-1")
    own.forget("c-1")
    own.forget(None)
    assert own.without([message_event("c-1"), message_event(None)]) is None


def test_only_the_latest_client_ids_are_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(echoes, "KEPT_MARKERS", 2)
    own = OwnEchoes()
    for client_id in ("c-1", "c-2", "c-3"):
        own.expect(client_id)
    assert own.without([message_event("c-1")]) is None
    assert own.without([message_event("c-3")]) is not None


# ---- over real sockets -----------------------------------------------------------------------


async def test_the_sender_gets_the_ack_and_its_other_tabs_get_the_message(
    live_server, website, agent
):
    hub = live_server.hub
    connect = WidgetClient.connect
    async with connect(live_server.ws_url, website.site_token, ORIGIN) as sender:
        welcome = await sender.hello()
        async with connect(live_server.ws_url, website.site_token, ORIGIN) as other_tab:
            await other_tab.hello(welcome["visitor_token"])
            ack = await sender.say("Where is my order?", "c-1")
            echoed = await other_tab.recv_type("message")
            assert echoed["message"]["client_id"] == "c-1"
            assert echoed["message"]["seq"] == ack["seq"]
            # Frames to one socket keep their order: had the sender been sent the
            # echo, it would come before the agent's reply.
            await hub.conversations.reply(agent, ack["conversation_id"], "On its way")
            frame = await sender.recv_type("message")
            assert frame["message"]["text"] == "On its way"
            second = await sender.say("Thanks", "c-2")
            await hub.conversations.reply(agent, ack["conversation_id"], "Welcome")
            assert (await sender.recv_type("message"))["message"]["text"] == "Welcome"
            assert second["seq"] == ack["seq"] + 2
