"""Live visitors, Start chat, campaigns and business hours in the console (real HTTP, socket)."""

from __future__ import annotations

from hub.models import Inbox
from tests.console_client import Console, page_data
from tests.test_console_socket import ready_socket, receive_until

XSS = '<img src=x onerror="alert(1)">'


async def browsing(hub, inbox: Inbox, url: str = "https://shop.test/pricing", title="Pricing"):  # type: ignore[no-untyped-def]
    visitor = await hub.visitors.create(inbox, "Mozilla/5.0 (Macintosh) Chrome/126.0 Safari/537.36")
    await hub.tracking.arrive(visitor, inbox, url, title)
    return visitor


async def test_live_visitors_page_lists_who_is_online_for_any_agent(
    hub, website, as_agent: Console
):
    visitor = await browsing(hub, website)
    page = await as_agent.http.get("/console/visitors")
    assert page.status_code == 200
    data = page_data(page.text)["visitors"]
    assert [(v["id"], v["page"]["title"], v["device"]["browser"]) for v in data] == [
        (visitor.id, "Pricing", "Chrome 126")
    ]
    api = await as_agent.http.get("/console/api/visitors")
    assert [v["id"] for v in api.json()["visitors"]] == [visitor.id]


async def test_visitor_details_have_the_trail_by_visit(hub, website, as_agent: Console):
    visitor = await browsing(hub, website, "https://shop.test/", "Home")
    await hub.tracking.page_view(visitor, website, "https://shop.test/pricing", "Pricing")
    response = await as_agent.http.get(f"/console/api/visitors/{visitor.id}")
    body = response.json()
    assert body["online"] is True
    assert [p["title"] for p in body["visits"][0]["pages"]] == ["Home", "Pricing"]
    assert (await as_agent.http.get("/console/api/visitors/v_nobody")).status_code == 404
    assert (await as_agent.http.get("/console/api/visitors/..%2Fetc")).status_code == 404


async def test_live_visitors_need_a_login(http):  # type: ignore[no-untyped-def]
    assert (await http.get("/console/visitors")).status_code == 303
    assert (await http.get("/console/api/visitors")).status_code == 401


async def test_start_chat_opens_a_conversation_assigned_to_the_agent(
    hub, website, as_agent: Console, agent
):
    visitor = await browsing(hub, website)
    response = await as_agent.post_json(f"/console/visitors/{visitor.id}/chat", {"text": "Hi!"})
    assert response.status_code == 201
    conversation = response.json()["conversation"]
    assert conversation["assignee"]["id"] == agent.id
    messages = await hub.conversations.messages(conversation["id"])
    assert [(m.author_name, m.text) for m in messages] == [("Sam Agent", "Hi!")]
    assert (await hub.tracking.online())[0]["chatting"] is True


async def test_start_chat_needs_csrf_and_text_and_changes_nothing_otherwise(
    hub, website, as_agent: Console
):
    visitor = await browsing(hub, website)
    no_csrf = await as_agent.http.post(
        f"/console/visitors/{visitor.id}/chat",
        json={"text": "Hi!"},
        headers={"Accept": "application/json"},
    )
    empty = await as_agent.post_json(f"/console/visitors/{visitor.id}/chat", {"text": "  "})
    unknown = await as_agent.post_json("/console/visitors/v_unknown/chat", {"text": "Hi"})
    assert (no_csrf.status_code, empty.status_code, unknown.status_code) == (403, 400, 404)
    assert await hub.conversations.latest_for_visitor(visitor.id) is None


async def test_console_socket_streams_visitor_events(hub, website, live_server, as_agent: Console):
    async with ready_socket(live_server, as_agent) as ws:
        visitor = await browsing(hub, website, "https://shop.test/new", "New arrival")
        frame = await receive_until(ws, "visitor")
    assert frame["visitor"]["id"] == visitor.id
    assert frame["page_view"]["title"] == "New arrival"


async def test_page_titles_and_urls_from_visitors_are_escaped_and_only_web_urls_are_links(
    hub, website, as_agent: Console
):
    visitor = await browsing(hub, website, "https://shop.test/x", XSS)
    await hub.conversations.start_proactive((await hub.agents.list())[0], visitor.id, "hello")
    conversation = await hub.conversations.latest_for_visitor(visitor.id)
    page = await as_agent.http.get(f"/console/conversations/{conversation.id}")
    # Markup only as inert JSON data; the side panel draws it as text, and a link only
    # for a web URL (tests/test_browser_console_pages.py).
    assert XSS not in page.text
    assert page_data(page.text)["open"]["page"] == {"url": "https://shop.test/x", "title": XSS}
    visitors = await as_agent.http.get("/console/visitors")
    assert XSS not in visitors.text.split('id="console-data"')[0]


# ---- campaigns (admins) ----------------------------------------------------------


def campaign_form(inbox_id: int, **overrides):  # type: ignore[no-untyped-def]
    return {
        "inbox_id": str(inbox_id),
        "name": "Pricing help",
        "message": "Questions about our plans?",
        "sender_name": "Sales team",
        "url_match": "prefix",
        "url_pattern": "/pricing",
        "min_seconds": "30",
        "audience": "all",
        "agents_online_only": "on",
        "enabled": "on",
        **overrides,
    }


async def test_admin_creates_and_edits_a_campaign_and_sees_its_numbers(
    hub, website, as_admin: Console
):
    created = await as_admin.post_form("/console/campaigns", campaign_form(website.id))
    assert created.status_code == 303
    [campaign] = await hub.campaigns.list()
    assert (campaign.min_seconds, campaign.agents_online_only, campaign.business_hours_only) == (
        30,
        True,
        False,
    )
    edited = await as_admin.post_form(
        f"/console/campaigns/{campaign.id}", campaign_form(website.id, min_seconds="5")
    )
    assert edited.status_code == 303
    assert (await hub.campaigns.get(campaign.id)).min_seconds == 5
    page = await as_admin.http.get("/console/campaigns")
    assert "Pricing help" in page.text and 'data-stat="shown">0<' in page.text


async def test_a_bad_campaign_form_is_shown_again_with_the_reason(hub, website, as_admin: Console):
    response = await as_admin.post_form(
        "/console/campaigns", campaign_form(website.id, url_pattern="pricing", name=XSS)
    )
    assert response.status_code == 400
    assert "starts with /" in response.text
    assert XSS not in response.text and "&lt;img" in response.text
    assert await hub.campaigns.list() == []


async def test_campaigns_and_business_hours_are_admin_only(hub, website, as_agent: Console):
    assert (await as_agent.http.get("/console/campaigns")).status_code == 403
    posted = await as_agent.post_form("/console/campaigns", campaign_form(website.id))
    hours = await as_agent.post_form(
        f"/console/inboxes/{website.id}/hours", {"timezone": "UTC", "mon": "09:00-17:00"}
    )
    assert (posted.status_code, hours.status_code) == (403, 403)
    assert await hub.campaigns.list() == []
    assert await hub.business_hours.get(website.id) is None


async def test_admin_sets_business_hours_in_the_inbox_time_zone(hub, website, as_admin: Console):
    response = await as_admin.post_form(
        f"/console/inboxes/{website.id}/hours",
        {"timezone": "Europe/Oslo", "mon": "09:00-12:00, 13:00-17:00", "sat": "10:00-14:00"},
    )
    assert response.status_code == 303
    hours = await hub.business_hours.get(website.id)
    assert hours.timezone == "Europe/Oslo"
    assert hours.schedule == {
        "mon": [("09:00", "12:00"), ("13:00", "17:00")],
        "sat": [("10:00", "14:00")],
    }
    bad = await as_admin.post_form(
        f"/console/inboxes/{website.id}/hours", {"timezone": "UTC", "tue": "nine to five"}
    )
    assert bad.status_code == 400 and "09:00-17:00" in bad.text
    assert (await hub.business_hours.get(website.id)).timezone == "Europe/Oslo"
