"""Console pages and fetch endpoints: the inbox list, a conversation, replies and actions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.core import Hub
from hub.events import topics
from hub.models import Agent, Inbox, Kind, Status, utcnow
from tests.console_client import (
    Console,
    page_data,
    visitor_says,
)


def row_ids(html: str) -> list[int]:
    """The conversations the page hands its list to draw (static/list.js), in order."""
    return [c["id"] for c in page_data(html)["conversations"]]


async def api_rows(console: Console, query: str = "") -> list[dict]:
    response = await console.http.get(f"/console/api/conversations{query}")
    assert response.status_code == 200
    return response.json()["conversations"]


# ---- the list ------------------------------------------------------------------------------


async def test_inbox_lists_open_conversations_newest_activity_first(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    first_visitor, first = await visitor_says(hub, website, "first")
    _, second = await visitor_says(hub, website, "second")
    await visitor_says(hub, website, "first again", visitor=first_visitor)
    page = await as_agent.http.get("/console/")
    assert page.status_code == 200
    assert row_ids(page.text) == [first.conversation.id, second.conversation.id]


async def test_empty_inbox_says_what_to_do(as_agent: Console) -> None:
    page = await as_agent.http.get("/console/")
    assert "No open conversations" in page.text


async def test_status_filter_shows_only_that_status(
    hub: Hub, website: Inbox, as_agent: Console, agent: Agent
) -> None:
    _, stays_open = await visitor_says(hub, website, "help")
    _, resolved = await visitor_says(hub, website, "thanks, bye")
    await hub.conversations.set_status(agent, resolved.conversation.id, Status.RESOLVED)
    open_ids = [row["id"] for row in await api_rows(as_agent, "?status=open")]
    resolved_ids = [row["id"] for row in await api_rows(as_agent, "?status=resolved")]
    all_ids = [row["id"] for row in await api_rows(as_agent, "?status=all")]
    assert open_ids == [stays_open.conversation.id]
    assert resolved_ids == [resolved.conversation.id]
    assert sorted(all_ids) == sorted([stays_open.conversation.id, resolved.conversation.id])
    page = await as_agent.http.get("/console/?status=resolved")
    assert row_ids(page.text) == [resolved.conversation.id]


async def test_scope_filter_mine_and_unassigned(
    hub: Hub, website: Inbox, as_agent: Console, agent: Agent, admin: Agent
) -> None:
    _, mine = await visitor_says(hub, website, "for Sam")
    _, theirs = await visitor_says(hub, website, "for Ada")
    _, nobodys = await visitor_says(hub, website, "for anyone")
    await hub.conversations.assign(agent, mine.conversation.id, agent.id)
    await hub.conversations.assign(admin, theirs.conversation.id, admin.id)
    assert [r["id"] for r in await api_rows(as_agent, "?scope=mine")] == [mine.conversation.id]
    assert [r["id"] for r in await api_rows(as_agent, "?scope=unassigned")] == [
        nobodys.conversation.id
    ]
    assert len(await api_rows(as_agent, "?scope=all")) == 3


async def test_unknown_filter_values_fall_back_to_open_and_all(as_agent: Console) -> None:
    response = await as_agent.http.get("/console/api/conversations?status=bogus&scope=everyone")
    assert response.json()["filter"] == {"status": "open", "scope": "all"}


async def test_unread_count_drops_to_zero_once_the_conversation_is_opened(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    visitor, posted = await visitor_says(hub, website, "one")
    await visitor_says(hub, website, "two", visitor=visitor)
    [row] = await api_rows(as_agent)
    assert row["unread"] == 2
    page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert page.status_code == 200
    [row] = await api_rows(as_agent)
    assert row["unread"] == 0


async def test_unread_counts_are_per_agent(
    hub: Hub, website: Inbox, as_agent: Console, as_admin: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello")
    await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert (await api_rows(as_agent))[0]["unread"] == 0
    assert (await api_rows(as_admin))[0]["unread"] == 1


# ---- a conversation ------------------------------------------------------------------------


async def test_conversation_page_shows_the_whole_history_with_notes_and_activity(
    hub: Hub, website: Inbox, as_agent: Console, agent: Agent
) -> None:
    _, posted = await visitor_says(hub, website, "Where is my order?")
    conversation_id = posted.conversation.id
    await hub.conversations.assign(agent, conversation_id, agent.id)
    await hub.conversations.reply(agent, conversation_id, "Let me check.")
    await hub.conversations.reply(agent, conversation_id, "Order 42 is late", private=True)
    page = await as_agent.http.get(f"/console/conversations/{conversation_id}")
    # What the page hands the thread to draw (static/thread.js; drawn in
    # tests/test_browser_console_pages.py), in seq order.
    thread = [
        (m["direction"], m["kind"], m["text"]) for m in page_data(page.text)["open"]["messages"]
    ]
    assert thread == [
        ("in", "text", "Where is my order?"),
        ("out", "activity", "Sam Agent self-assigned the conversation"),
        ("out", "text", "Let me check."),
        ("out", "note", "Order 42 is late"),
    ]


async def test_visitor_html_is_escaped_in_the_conversation_page(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    attack = "<img src=x onerror=alert(1)>"
    _, posted = await visitor_says(hub, website, attack)
    page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert "<img" not in page.text
    # The text reaches the script only as JSON data, still inert (drawn as text:
    # tests/test_browser_chat.py).
    data = page_data(page.text)
    assert data["conversations"][0]["preview"] == attack
    assert data["open"]["messages"][0]["text"] == attack


async def test_side_panel_shows_contact_page_and_browser(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    visitor, posted = await visitor_says(hub, website, "hi")
    await hub.visitors.seen(visitor.id, "https://shop.test/p/shoes?size=42", "Shoes — Acme")
    await hub.visitors.set_attributes(visitor, {"plan": "Pro", "vip": True})
    page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    html = page.text
    open_view = page_data(html)["open"]
    shoes = "https://shop.test/p/shoes?size=42"
    assert open_view["page"] == {"url": shoes, "title": "Shoes — Acme"}
    assert "Firefox 127" in html
    assert "plan" in html and "Pro" in html


async def test_unknown_conversation_is_404(as_agent: Console) -> None:
    assert (await as_agent.http.get("/console/conversations/999")).status_code == 404
    response = await as_agent.http.get(
        "/console/conversations/999/messages?after=0", headers={"Accept": "application/json"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_messages_endpoint_returns_messages_after_a_seq(
    hub: Hub, website: Inbox, as_agent: Console, agent: Agent
) -> None:
    visitor, posted = await visitor_says(hub, website, "one")
    await visitor_says(hub, website, "two", visitor=visitor)
    await hub.conversations.reply(agent, posted.conversation.id, "three", private=True)
    response = await as_agent.http.get(
        f"/console/conversations/{posted.conversation.id}/messages?after=1"
    )
    assert response.status_code == 200
    body = response.json()
    assert [(m["seq"], m["text"], m["kind"]) for m in body["messages"]] == [
        (2, "two", "text"),
        (3, "three", "note"),
    ]
    assert body["more"] is False


async def test_messages_endpoint_refuses_a_bad_after(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "one")
    response = await as_agent.http.get(
        f"/console/conversations/{posted.conversation.id}/messages?after=-1"
    )
    assert response.status_code == 400


# ---- replying ---------------------------------------------------------------------------------


async def test_reply_via_fetch_is_stored_and_published(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    visitor, posted = await visitor_says(hub, website, "hello?")
    conversation_id = posted.conversation.id
    async with hub.bus.subscribe(topics.visitor_channel(visitor.id)) as to_visitor:
        response = await as_agent.post_json(
            f"/console/conversations/{conversation_id}/messages",
            {"text": "Hi, how can I help?", "private": False, "client_id": "c-1"},
        )
        assert response.status_code == 201
        assert response.json()["message"]["seq"] == 2
        event = (await to_visitor.get()).json()
    assert event["type"] == "message" and event["message"]["text"] == "Hi, how can I help?"
    stored = (await hub.conversations.messages(conversation_id))[-1]
    assert (stored.text, stored.kind, stored.client_id) == ("Hi, how can I help?", Kind.TEXT, "c-1")


async def test_reply_form_post_without_javascript_redirects_back(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    conversation_id = posted.conversation.id
    response = await as_agent.post_form(
        f"/console/conversations/{conversation_id}/messages?status=open&scope=mine",
        {"text": "Plain form reply", "mode": "reply", "client_id": "f-abc"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/console/conversations/{conversation_id}?status=open&scope=mine"
    )
    assert (await hub.conversations.messages(conversation_id))[-1].text == "Plain form reply"


async def test_private_note_is_stored_as_a_note_and_not_sent_to_the_visitor(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    visitor, posted = await visitor_says(hub, website, "hello?")
    conversation_id = posted.conversation.id
    async with hub.bus.subscribe(topics.visitor_channel(visitor.id)) as to_visitor:
        response = await as_agent.post_form(
            f"/console/conversations/{conversation_id}/messages",
            {"text": "VIP customer", "mode": "note"},
        )
        assert response.status_code == 303
        # A public reply after the note: the first thing the visitor hears is that reply.
        await as_agent.post_json(
            f"/console/conversations/{conversation_id}/messages", {"text": "Hello!"}
        )
        first = (await to_visitor.get()).json()
    assert first["message"]["text"] == "Hello!"
    note = (await hub.conversations.messages(conversation_id))[1]
    assert (note.text, note.kind) == ("VIP customer", Kind.NOTE)


async def test_resending_the_same_client_id_stores_one_message(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    path = f"/console/conversations/{posted.conversation.id}/messages"
    first = await as_agent.post_json(path, {"text": "once", "client_id": "c-same"})
    again = await as_agent.post_json(path, {"text": "once", "client_id": "c-same"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert len(await hub.conversations.messages(posted.conversation.id)) == 2


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"text": "   "}, 400),
        ({"text": 42}, 400),
        ({"text": "x" * 20_001}, 413),
        ({"text": "ok", "client_id": "has spaces"}, 400),
    ],
    ids=["blank", "not-a-string", "too-long", "bad-client-id"],
)
async def test_bad_replies_are_refused_and_nothing_is_stored(
    hub: Hub, website: Inbox, as_agent: Console, payload: dict, status: int
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/messages", payload
    )
    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert len(await hub.conversations.messages(posted.conversation.id)) == 1


async def test_reply_to_an_unknown_conversation_is_404(as_agent: Console) -> None:
    response = await as_agent.post_json("/console/conversations/999/messages", {"text": "hi"})
    assert response.status_code == 404


# ---- assigning and status --------------------------------------------------------------------


async def test_assign_to_me(hub: Hub, website: Inbox, as_agent: Console, agent: Agent) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/assign", {"assignee_id": "me"}
    )
    assert response.status_code == 200
    assert response.json()["conversation"]["assignee"] == {"id": agent.id, "name": agent.name}
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id == agent.id


async def test_assign_to_another_agent_with_a_form_then_unassign(
    hub: Hub, website: Inbox, as_agent: Console, admin: Agent
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    path = f"/console/conversations/{posted.conversation.id}/assign"
    response = await as_agent.post_form(path, {"assignee_id": str(admin.id)})
    assert response.status_code == 303
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id == admin.id
    await as_agent.post_form(path, {"assignee_id": ""})
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id is None


async def test_assign_to_an_unknown_agent_is_refused(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/assign", {"assignee_id": 999}
    )
    assert response.status_code == 400
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id is None


async def test_status_change_is_stored_and_published(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    async with hub.bus.subscribe(topics.inbox_channel(website.id)) as agents_channel:
        response = await as_agent.post_form(
            f"/console/conversations/{posted.conversation.id}/status", {"status": "pending"}
        )
        assert response.status_code == 303
        kinds = [(await agents_channel.get()).json()["type"] for _ in range(2)]
    assert kinds == ["message", "conversation"]
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.PENDING


async def test_snooze_for_a_day_ends_by_itself(hub: Hub, website: Inbox, as_agent: Console) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    before = utcnow()
    response = await as_agent.post_form(
        f"/console/conversations/{posted.conversation.id}/status", {"snooze": "1d"}
    )
    assert response.status_code == 303
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.SNOOZED
    assert await hub.conversations.wake_snoozed(before + timedelta(hours=23)) == 0
    assert await hub.conversations.wake_snoozed(before + timedelta(days=1, minutes=1)) == 1
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.OPEN


async def test_unknown_snooze_is_refused(hub: Hub, website: Inbox, as_agent: Console) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/status", {"snooze": "forever"}
    )
    assert response.status_code == 400
    assert "snooze must be one of 1h, 4h, 1d, 3d, 1w" in response.text
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.OPEN


async def test_conversation_page_offers_snooze_durations(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert '<option value="1w">1 week</option>' in page.text


async def test_unknown_status_is_refused(hub: Hub, website: Inbox, as_agent: Console) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/status", {"status": "deleted"}
    )
    assert response.status_code == 400
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.OPEN


async def test_the_side_panel_names_browser_and_system_like_the_live_view(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    visitor = await hub.visitors.create(
        website,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    )
    _, posted = await visitor_says(hub, website, "hi", visitor=visitor)
    page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert "Mobile Safari 17 on iOS" in page.text


@pytest.mark.parametrize("body", [{"snooze": ["1h"]}, {"status": ["open"]}, {"snooze": {"a": 1}}])
async def test_status_fields_of_the_wrong_type_are_refused(
    hub: Hub, website: Inbox, as_agent: Console, body: dict
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/status", body
    )
    assert response.status_code == 400
    assert "must be a string" in response.text
    assert (await hub.conversations.get(posted.conversation.id)).status is Status.OPEN


@pytest.mark.parametrize("assignee", [10**30, -1, True, [1]])
async def test_an_assignee_id_out_of_range_or_of_the_wrong_type_is_refused(
    hub: Hub, website: Inbox, as_agent: Console, assignee: object
) -> None:
    _, posted = await visitor_says(hub, website, "hello?")
    response = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/assign", {"assignee_id": assignee}
    )
    assert response.status_code == 400
    assert (await hub.conversations.get(posted.conversation.id)).assignee_id is None
