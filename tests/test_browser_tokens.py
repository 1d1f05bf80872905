"""Visitor tokens in headless Chromium: a widget in use renews its token, and an
open tab whose token expired carries on as a new visitor (hub clock moved by hand)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser import chromium, shop_site

DAY = 86400
# The page keeps its sockets where the test can close one, as a dropped link would.
KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (url, protocols) {
    const s = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__sockets.push(s);
    return s;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""


@pytest.fixture
async def shop(live_server, hub, agent):  # type: ignore[no-untyped-def]
    await hub.presence.connected(agent.id)  # the widget offers a chat, not the away form
    inbox = await hub.inboxes.create_website("Browser shop", ["http://placeholder.test"])
    async with shop_site(live_server.url, inbox.site_token) as shop_url:
        await hub.inboxes.set_allowed_origins(inbox.id, [shop_url])
        yield shop_url, inbox


@pytest.fixture
async def page(shop):  # type: ignore[no-untyped-def]
    async with chromium() as browser:
        context = await browser.new_context()
        opened = await context.new_page()
        await opened.add_init_script(KEEP_SOCKETS)
        yield opened
        await context.close()


async def stored_token(page: Page, site: str) -> str | None:
    return await page.evaluate("k => localStorage.getItem(k)", f"hubchat:{site}:token")


async def token_other_than(page: Page, site: str, old: str | None) -> str:
    await page.wait_for_function(
        "([k, old]) => { const t = localStorage.getItem(k); return t && t !== old; }",
        arg=[f"hubchat:{site}:token", old],
    )
    token = await stored_token(page, site)
    assert token
    return token


async def visitor_says(page: Page, text: str) -> None:
    composer = page.locator("form.cmp textarea")
    await expect(composer).to_be_visible()
    await composer.fill(text)
    await composer.press("Enter")
    # Delivered: the hub stored it and acked (a pending row shows the text too,
    # and its outbox entry would be sent again on the next welcome).
    delivered = page.locator(".log .row:not(.pend):not(.fail)")
    await expect(delivered.get_by_text(text, exact=True)).to_be_visible()


async def open_chat(page: Page) -> None:
    if not await page.locator("#hc-panel").is_visible():
        await page.get_by_role("button", name="Open chat").click()


async def test_the_widget_stores_the_renewed_token_and_keeps_its_visitor(
    live_server, shop, page, clock
):
    shop_url, inbox = shop
    await page.goto(shop_url)
    await open_chat(page)
    await visitor_says(page, "Do you ship abroad?")
    first = await token_other_than(page, inbox.site_token, None)
    visitor_id = live_server.hub.tokens.verify(first, inbox.id).visitor_id
    assert visitor_id
    for _ in range(2):  # 40 days in all: past the first token's life
        clock.advance(20 * DAY)
        previous = await stored_token(page, inbox.site_token)
        await page.reload()
        renewed = await token_other_than(page, inbox.site_token, previous)
        assert live_server.hub.tokens.verify(renewed, inbox.id).visitor_id == visitor_id
    await open_chat(page)
    log = page.locator(".log")
    await expect(log.get_by_text("Do you ship abroad?", exact=True)).to_be_visible()


async def test_an_open_tab_whose_token_expired_starts_over_as_a_new_visitor(
    live_server, shop, page, clock
):
    shop_url, inbox = shop
    await page.goto(shop_url)
    await open_chat(page)
    await visitor_says(page, "Do you ship abroad?")
    old = await token_other_than(page, inbox.site_token, None)
    old_visitor = live_server.hub.tokens.verify(old, inbox.id).visitor_id
    clock.advance(31 * DAY)
    await page.evaluate("window.__sockets.forEach(s => s.close())")  # the link drops
    new = await token_other_than(page, inbox.site_token, old)
    new_visitor = live_server.hub.tokens.verify(new, inbox.id).visitor_id
    assert new_visitor and new_visitor != old_visitor
    log = page.locator(".log")
    await expect(log.get_by_text("Do you ship abroad?", exact=True)).to_have_count(0)
    await visitor_says(page, "Hello again")
    conversation, _ = await live_server.hub.conversations.resume(new_visitor, 0, limit=10)
    assert conversation is not None
