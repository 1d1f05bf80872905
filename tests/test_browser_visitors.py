"""Live visitors end to end in headless Chromium: a shop on another origin, an agent watching.

Screenshots of the live view land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.browser import ARTIFACTS, chromium, docs_image, shop_site
from tests.test_browser_chat import log_in

PUSH = (
    '<p><a id="to-pricing" href="/pricing">Pricing</a></p>'
    '<button id="team" onclick="history.pushState({}, &quot;&quot;, '
    "&quot;/pricing/team?token=s3cret&quot;); document.title = &quot;Team plans&quot;;"
    '">Team plans</button>'
)
PAGES = {
    "/": ("Home", '<p><a id="to-pricing" href="/pricing">Pricing</a></p>'),
    "/pricing": ("Pricing", PUSH),
    "/pricing/team": ("Team plans", ""),
}


@pytest.fixture
async def shop(live_server, hub):  # type: ignore[no-untyped-def]
    inbox = await hub.inboxes.create_website("Browser shop", ["http://placeholder.test"])
    async with shop_site(live_server.url, inbox.site_token, pages=PAGES) as shop_url:
        await hub.inboxes.set_allowed_origins(inbox.id, [shop_url])
        yield shop_url, inbox


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


async def test_agent_sees_each_page_live_follows_the_trail_and_starts_a_chat(
    live_server, admin, shop, browser
):
    shop_url, _ = shop
    ARTIFACTS.mkdir(exist_ok=True)
    agent_context = await browser.new_context(viewport={"width": 1440, "height": 860})
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)
    await console.goto(f"{live_server.url}/console/visitors")
    await expect(console.locator("#live-state")).to_have_attribute("data-state", "online")
    await expect(console.locator("#vis-empty")).to_be_visible()

    visitor_context = await browser.new_context(viewport={"width": 1100, "height": 760})
    visitor = await visitor_context.new_page()
    await visitor.goto(shop_url)
    row = console.locator(".vis-row")
    await expect(row.locator(".vis-page-title")).to_have_text("Home")

    await visitor.click("#to-pricing")  # a full page load: the visit goes on
    await expect(row.locator(".vis-page-title")).to_have_text("Pricing")
    await expect(row).to_have_count(1)

    await visitor.click("#team")  # single-page-app navigation through pushState
    await expect(row.locator(".vis-page-title")).to_have_text("Team plans")
    # The secret query parameter never reached the console.
    await expect(row.locator(".vis-page-url")).to_have_text(
        shop_url.removeprefix("http://") + "/pricing/team"
    )
    await expect(row.locator(".vis-meta")).to_contain_text("3 pages")

    await row.click()
    trail = console.locator("#vd-trail .trail-title")
    await expect(trail).to_have_text(["Home", "Pricing", "Team plans"])
    await expect(console.locator("#vd-page-title")).to_have_text("Team plans")
    await console.screenshot(path=docs_image("live-visitors.png"))

    await console.fill("#vd-start-text", "Hi! Can I help you choose a plan?")
    await console.click("#vd-start-send")
    await console.wait_for_url(f"{live_server.url}/console/conversations/*")
    # The visitor's widget opens by itself with the agent's message.
    await expect(visitor.locator("#hc-panel")).to_be_visible()
    await expect(visitor.locator(".log")).to_contain_text("Hi! Can I help you choose a plan?")
    await visitor.screenshot(path=ARTIFACTS / "live-visitors-widget.png")
    # The conversation's side panel shows where the visitor is, and their trail.
    await expect(console.locator("#side-page-title")).to_have_text("Team plans")
    await expect(console.locator("#side-trail .trail-title")).to_have_text(
        ["Team plans", "Pricing", "Home"]
    )
    await visitor.evaluate("history.pushState({}, '', '/pricing?plan=pro'); document.title = 'Pro'")
    await expect(console.locator("#side-page-title")).to_have_text("Pro")
    await expect(console.locator("#side-trail .trail-title").first).to_have_text("Pro")
    await console.screenshot(path=ARTIFACTS / "live-visitors-conversation.png")
    await agent_context.close()
    await visitor_context.close()


async def test_the_reload_on_connecting_does_not_undo_a_visitor_who_arrived_meanwhile(
    live_server, admin, shop, browser
):
    """The live view reloads its visitors on (re)connecting; an answer read before
    a visitor arrived but handed over after the visitor's live event must not
    take the visitor off the list again."""
    shop_url, _ = shop
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await context.new_page()
    await log_in(console, live_server.url, admin.email)
    answered, hand_over = asyncio.Event(), asyncio.Event()
    stale: dict = {}

    async def held_back(route):  # type: ignore[no-untyped-def]
        response = await route.fetch()  # nobody on the site yet
        stale["visitors"] = (await response.json())["visitors"]
        answered.set()
        await hand_over.wait()
        await route.fulfill(response=response, json=stale)

    await console.route("**/console/api/visitors", held_back, times=1)
    await console.goto(f"{live_server.url}/console/visitors")
    async with asyncio.timeout(30):
        await answered.wait()
    assert stale["visitors"] == []
    visitor_context = await browser.new_context()
    visitor = await visitor_context.new_page()
    await visitor.goto(shop_url)
    row = console.locator(".vis-row")
    await expect(row.locator(".vis-page-title")).to_have_text("Home")  # the live event

    # The held answer, plus a made-up visitor whose row shows when it is applied.
    fresh = await console.request.get(f"{live_server.url}/console/api/visitors")
    [arrived] = (await fresh.json())["visitors"]
    stale["visitors"] = [{**arrived, "id": "v-marker", "page": {**arrived["page"], "title": "M"}}]
    hand_over.set()
    await expect(console.locator('.vis-row[data-id="v-marker"]')).to_be_visible()
    await expect(console.locator(f'.vis-row[data-id="{arrived["id"]}"]')).to_be_visible()
    await visitor_context.close()
    await context.close()


async def test_a_campaign_opens_the_widget_after_its_seconds_and_a_reply_is_counted(
    live_server, admin, shop, browser
):
    shop_url, inbox = shop
    hub = live_server.hub
    campaign = await hub.campaigns.create(
        inbox.id,
        {
            "name": "Pricing help",
            "message": "Questions about our plans? I'm here.",
            "sender_name": "Sales team",
            "url_match": "prefix",
            "url_pattern": "/pricing",
            "min_seconds": 1,
            "agents_online_only": True,
        },
    )
    await hub.campaigns.create(
        inbox.id,
        {
            "name": "Returning visitors",
            "message": "Welcome back!",
            "sender_name": "Ada",
            "url_match": "exact",
            "url_pattern": "/",
            "min_seconds": 10,
            "audience": "returning",
            "business_hours_only": True,
        },
    )
    agent_context = await browser.new_context(viewport={"width": 1440, "height": 900})
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)  # an agent is online

    visitor_context = await browser.new_context(viewport={"width": 1100, "height": 760})
    visitor = await visitor_context.new_page()
    await visitor.goto(shop_url)
    await visitor.click("#to-pricing")
    panel = visitor.locator("#hc-panel")
    await expect(panel).to_be_visible()  # opened by the campaign after its second
    await expect(visitor.locator(".log")).to_contain_text("Questions about our plans? I'm here.")
    await expect(visitor.locator(".log")).to_contain_text("Sales team")
    await visitor.screenshot(path=ARTIFACTS / "campaign-widget.png")
    composer = visitor.locator("form.cmp textarea")
    await composer.fill("Is there a discount for teams?")
    await composer.press("Enter")

    row = console.locator(".conv-row", has_text="Is there a discount for teams?")
    await expect(row).to_be_visible()
    await row.locator("a").click()
    await expect(console.locator("#thread .msg-bubble")).to_have_text(
        ["Questions about our plans? I'm here.", "Is there a discount for teams?"]
    )
    stats = await hub.campaigns.get(campaign.id)
    assert (stats.shown, stats.replied) == (1, 1)
    await console.goto(f"{live_server.url}/console/campaigns")
    await expect(console.locator('td[data-stat="replied"]').first).to_have_text("1")
    await console.screenshot(path=docs_image("campaigns.png"), full_page=True)
    await agent_context.close()
    await visitor_context.close()


async def test_the_demo_shop_menu_shows_up_live_as_pages(live_server, admin, hub, browser):
    from dataclasses import replace

    from hub.composition.commands import DEMO_CAMPAIGN
    from hub.inboxes.service import DEMO_SITE_TOKEN

    demo = await hub.inboxes.create_website("Demo", [live_server.url], site_token=DEMO_SITE_TOKEN)
    await hub.campaigns.create(demo.id, DEMO_CAMPAIGN)
    live_server.app.state.settings = replace(
        live_server.app.state.settings, demo=True, public_url=live_server.url
    )
    agent_context = await browser.new_context(viewport={"width": 1440, "height": 860})
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)
    await console.goto(f"{live_server.url}/console/visitors")
    visitor_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    shop = await visitor_context.new_page()
    await shop.goto(f"{live_server.url}/demo")
    row = console.locator(".vis-row")
    await expect(row.locator(".vis-page-title")).to_have_text("Acme Outdoor — Gear for every trail")
    await shop.get_by_role("link", name="Membership").click()
    await expect(row.locator(".vis-page-title")).to_have_text("Membership & pricing — Acme Outdoor")
    await expect(shop.get_by_role("heading", name="Membership & pricing")).to_be_visible()
    await shop.reload()  # the section's own address serves the shop too
    await expect(shop.get_by_role("heading", name="Membership & pricing")).to_be_visible()
    await agent_context.close()
    await visitor_context.close()


async def test_global_privacy_control_means_no_trail_but_chat_works(
    live_server, admin, shop, browser
):
    shop_url, _ = shop
    hub = live_server.hub
    agent_context = await browser.new_context()
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)
    await console.goto(f"{live_server.url}/console/visitors")
    visitor_context = await browser.new_context()
    # The browser says "do not sell or share" (navigator.globalPrivacyControl).
    await visitor_context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    visitor = await visitor_context.new_page()
    await visitor.goto(shop_url)
    await visitor.click("#to-pricing")
    await visitor.get_by_role("button", name="Open chat").click()
    composer = visitor.locator("form.cmp textarea")
    await composer.fill("Private hello")
    await composer.press("Enter")
    await expect(visitor.locator(".log").get_by_text("Private hello", exact=True)).to_be_visible()
    conversation = console.locator(".conv-row", has_text="Private hello")
    await console.goto(f"{live_server.url}/console/")
    await expect(conversation).to_be_visible()  # chat works
    await console.goto(f"{live_server.url}/console/visitors")
    await expect(console.locator("#vis-empty")).to_be_visible()  # nobody is tracked
    [row] = await hub.conversations.list_for_agent(admin)
    assert await hub.tracking.recent_pages(row.visitor_id) == []
    assert (await hub.visitors.get(row.visitor_id)).last_page_url is None
    await agent_context.close()
    await visitor_context.close()
