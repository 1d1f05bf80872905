"""End to end in headless Chromium: a shop on another origin, a visitor, an agent."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from playwright.async_api import Page, expect

from hub.models import Inbound
from tests.browser import ARTIFACTS, chromium, docs_image, shop_site
from tests.console_client import AGENT_PASSWORD

XSS = '<img src=x onerror="window.__xss = 1">'


@pytest.fixture
async def shop(live_server, hub):  # type: ignore[no-untyped-def]
    """A website inbox whose only allowed origin is a shop page on 127.0.0.2."""
    inbox = await hub.inboxes.create_website("Browser shop", ["http://placeholder.test"])
    async with shop_site(live_server.url, inbox.site_token) as shop_url:
        await hub.inboxes.set_allowed_origins(inbox.id, [shop_url])
        yield shop_url


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


async def log_in(page: Page, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/console/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", AGENT_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/console/")
    # The console socket is up once the page says it is live.
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "online")


async def visitor_says(page: Page, text: str) -> None:
    composer = page.locator("form.cmp textarea")
    await expect(composer).to_be_visible()
    await composer.fill(text)
    await composer.press("Enter")
    # Delivered (acknowledged after the hub stored it): no longer pending.
    await expect(
        page.locator(".log .row:not(.pend):not(.fail)").get_by_text(text, exact=True)
    ).to_be_visible()


async def test_visitor_and_agent_chat_both_ways_and_history_survives_a_reload(
    live_server, admin, shop, browser
):
    ARTIFACTS.mkdir(exist_ok=True)
    agent_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)

    visitor_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    visitor = await visitor_context.new_page()
    await visitor.goto(shop)
    await visitor.get_by_role("button", name="Open chat").click()
    await visitor_says(visitor, "Hello from the shop page")

    # The agent's inbox shows the new conversation live, without a reload.
    row = console.locator(".conv-row", has_text="Hello from the shop page")
    await expect(row).to_be_visible()
    await row.locator("a").click()
    thread = console.locator("#thread")
    await expect(thread.locator(".msg-in .msg-bubble")).to_have_text(["Hello from the shop page"])
    await console.fill("#composer-text", "Hi! How can I help?")
    await console.press("#composer-text", "Enter")
    await expect(thread.locator(".msg-out .msg-bubble")).to_have_text(["Hi! How can I help?"])

    # The visitor sees the reply live, with the agent's name.
    log = visitor.locator(".log")
    await expect(log).to_contain_text("Hi! How can I help?")
    await expect(log).to_contain_text(admin.name)
    await visitor.screenshot(path=docs_image("widget.png"))
    await console.screenshot(path=docs_image("console.png"))

    # After a reload the whole history is still there.
    await visitor.reload()
    panel = visitor.locator("#hc-panel")
    if not await panel.is_visible():
        await visitor.get_by_role("button", name="Open chat").click()
    await expect(log.get_by_text("Hello from the shop page", exact=True)).to_be_visible()
    await expect(log.get_by_text("Hi! How can I help?", exact=True)).to_be_visible()

    # And the visitor's reply reaches the open conversation live.
    await visitor_says(visitor, "Thanks, that was quick")
    await expect(thread.locator(".msg-in .msg-bubble")).to_have_text(
        ["Hello from the shop page", "Thanks, that was quick"]
    )
    await agent_context.close()
    await visitor_context.close()


async def test_visitor_html_is_shown_as_text_in_the_console_and_runs_nothing(
    live_server, admin, shop, browser
):
    agent_context = await browser.new_context()
    console = await agent_context.new_page()
    await log_in(console, live_server.url, admin.email)
    visitor_context = await browser.new_context()
    visitor = await visitor_context.new_page()
    await visitor.goto(shop)
    await visitor.get_by_role("button", name="Open chat").click()
    await visitor_says(visitor, XSS)

    # Live: the list row shows the markup as text.
    row = console.locator(".conv-row", has_text=XSS)
    await expect(row.locator(".conv-preview")).to_have_text(XSS)
    # Rendered by the server: the conversation shows it as text too.
    await row.locator("a").click()
    bubble = console.locator("#thread .msg-in .msg-bubble")
    await expect(bubble).to_have_text([XSS])
    assert await console.locator("#thread img, .conv-list img").count() == 0
    assert await console.evaluate("window.__xss") is None

    # An agent's reply with markup is text in the widget as well.
    await console.fill("#composer-text", XSS)
    await console.press("#composer-text", "Enter")
    log = visitor.locator(".log")
    await expect(log.get_by_text(XSS, exact=True)).to_have_count(2)
    assert await visitor.evaluate("window.__xss") is None
    assert await visitor.locator(".log img").count() == 0
    await agent_context.close()
    await visitor_context.close()


async def test_a_burst_of_messages_in_one_batch_frame_all_show_in_the_inbox(
    live_server, hub, admin, shop, browser
):
    """Thirty visitors' messages stored by one group commit reach the console as
    one `batch` frame: every conversation shows, each with its unread count,
    and the tab title counts them all."""
    website = await hub.inboxes.create_website("Burst shop", ["https://burst.test"])
    first = [await hub.visitors.create(website, "pytest") for _ in range(30)]
    for visitor in first:  # each visitor has a conversation before the console opens
        await hub.conversations.ingest(
            Inbound.web_chat(
                inbox_id=website.id, text="opening", client_id=None, visitor_id=visitor.id
            )
        )
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await context.new_page()
    await log_in(console, live_server.url, admin.email)
    frames: list[str] = []
    console.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    await console.reload()
    await expect(console.locator("#live-state")).to_have_attribute("data-state", "online")

    await asyncio.gather(
        *(
            hub.conversations.ingest(
                Inbound.web_chat(
                    inbox_id=website.id, text=f"burst {n}", client_id=None, visitor_id=v.id
                )
            )
            for n, v in enumerate(first)
        )
    )
    for n in (0, 14, 29):
        await expect(console.locator(".conv-row", has_text=f"burst {n}")).to_be_visible()
    await expect(console.locator(".conv-row", has_text="burst")).to_have_count(30)
    assert any(frame.startswith('{"type":"batch"') for frame in frames)
    await expect(console).to_have_title(re.compile(r"^\(\d+\) "))
    await context.close()


async def console_with_list_reload_held(browser, live_server, admin):  # type: ignore[no-untyped-def]
    """A logged-in console whose list reload (on its socket's connect) has been
    read from the server but not yet delivered: (context, page, route, answer)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await context.new_page()
    await log_in(console, live_server.url, admin.email)
    held: asyncio.Queue = asyncio.Queue()

    async def hold(route):  # type: ignore[no-untyped-def]
        await held.put((route, await route.fetch()))  # the list as it is now

    await console.route("**/console/api/conversations?*", hold)
    await console.reload()
    await expect(console.locator("#live-state")).to_have_attribute("data-state", "online")
    route, older = await asyncio.wait_for(held.get(), 10)
    return context, console, route, older


async def test_a_list_reload_older_than_the_live_events_does_not_undo_them(
    live_server, hub, admin, browser
):
    """The console reloads its list when its socket (re)connects. An answer read
    before a message arrived, but delivered after its event, must not put the
    older row back over the newer one."""
    website = await hub.inboxes.create_website("Race shop", ["https://race.test"])
    visitor = await hub.visitors.create(website, "pytest")
    await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=website.id, text="opening", client_id=None, visitor_id=visitor.id)
    )
    context, console, route, older = await console_with_list_reload_held(
        browser, live_server, admin
    )

    await hub.conversations.ingest(
        Inbound.web_chat(
            inbox_id=website.id, text="newer news", client_id=None, visitor_id=visitor.id
        )
    )
    row = console.locator(".conv-row", has_text="Race shop")
    await expect(row).to_contain_text("newer news")
    body = await older.json()
    assert [c["preview"] for c in body["conversations"]] == ["opening"]
    body["counts"]["open"] = 999  # marks the moment the older answer has been applied
    await route.fulfill(response=older, json=body)
    await expect(console.locator('[data-count="open"]')).to_have_text("999")
    await expect(row).to_contain_text("newer news")
    await context.close()


async def test_a_list_reload_older_than_a_contacts_rename_does_not_undo_it(
    live_server, hub, admin, browser
):
    """As above, for a contact renamed while the reload's answer was on its way."""
    website = await hub.inboxes.create_website("Rename shop", ["https://rename.test"])
    visitor = await hub.visitors.create(website, "pytest")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(
            inbox_id=website.id, text="who am I", client_id=None, visitor_id=visitor.id
        )
    )
    context, console, route, older = await console_with_list_reload_held(
        browser, live_server, admin
    )

    await hub.contacts.update(posted.conversation.contact_id, "Grace Hopper", None)
    row = console.locator(".conv-row", has_text="Rename shop")
    await expect(row).to_contain_text("Grace Hopper")
    body = await older.json()
    assert "Grace Hopper" not in json.dumps(body)  # the answer predates the rename
    body["counts"]["open"] = 999  # marks the moment the older answer has been applied
    await route.fulfill(response=older, json=body)
    await expect(console.locator('[data-count="open"]')).to_have_text("999")
    await expect(row).to_contain_text("Grace Hopper")
    await context.close()
