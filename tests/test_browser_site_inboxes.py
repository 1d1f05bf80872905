"""End to end in Chromium (issue 16): an admin adds a website in the console, the
snippet is pasted into a page on another origin, and a visitor chats through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import uvicorn
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from hub.email.inboxes import EmailInboxConfig
from hub.inboxes.widget_settings import clean_settings
from tests.browser import ARTIFACTS, chromium, shop_site
from tests.test_browser_chat import log_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@asynccontextmanager
async def owners_site(pasted: dict[str, str]) -> AsyncIterator[str]:
    """The site owner's page on 127.0.0.3 (another origin), with whatever was pasted."""

    async def page(request) -> HTMLResponse:  # type: ignore[no-untyped-def]
        return HTMLResponse(
            "<!doctype html><html><head><title>Owner's shop</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f"<body><h1>Owner's shop</h1><p>Fresh bread daily.</p>{pasted.get('html', '')}"
            "</body></html>"
        )

    app = Starlette(routes=[Route("/", page)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.3", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.3:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


async def test_an_admin_adds_a_site_and_a_visitor_chats_through_its_snippet(
    live_server, admin, browser
):
    ARTIFACTS.mkdir(exist_ok=True)
    # The snippet names the hub's public URL; the owner's site is on loopback: let
    # "test this site" fetch it.
    settings = live_server.app.state.settings
    live_server.app.state.settings = replace(
        settings, public_url=live_server.url, site_check_allow_private=True
    )
    pasted: dict[str, str] = {}
    async with owners_site(pasted) as site_url:
        agent_context = await browser.new_context(viewport=DESKTOP)
        console = await agent_context.new_page()
        await log_in(console, live_server.url, admin.email)

        await console.goto(f"{live_server.url}/console/inboxes")
        await console.get_by_role("link", name="Add website").click()
        form = console.locator("form.website-form")
        await form.locator("input[name=name]").fill("Owner's shop")
        # A bad origin first: refused with its line named, nothing saved.
        await form.locator("textarea[name=allowed_origins]").fill(f"{site_url}\nnot a site")
        await form.get_by_role("button", name="Add website").click()
        await expect(console.locator("#allowed_origins-error")).to_contain_text("Line 2:")
        assert len(await live_server.hub.inboxes.list()) == 0
        await console.screenshot(path=ARTIFACTS / "website-form-error.png", full_page=True)

        await form.locator("textarea[name=allowed_origins]").fill(site_url)
        await form.locator("input[name=color]").fill("#0f766e")
        await form.locator("select[name=position]").select_option("bottom-left")
        await form.locator("textarea[name=greeting]").fill("Welcome to the bakery!")
        await form.locator("select[name=prechat_name]").select_option("required")
        await form.get_by_role("button", name="Add website").click()
        await expect(console.locator(".alert-success")).to_have_text("Saved.")

        # The install snippet, copied from the page, is pasted into the owner's page.
        snippet = await console.locator("#snippet").text_content()
        assert snippet and 'data-site="' in snippet
        pasted["html"] = snippet
        await console.get_by_role("button", name="Test this site").click()
        await expect(console.locator(".site-check.is-ok")).to_contain_text(
            "the script tag is on the page"
        )
        await console.screenshot(path=ARTIFACTS / "website-form.png", full_page=True)
        phone_console = await (await browser.new_context(viewport=PHONE)).new_page()
        await log_in(phone_console, live_server.url, admin.email)
        await phone_console.goto(console.url.split("#")[0].replace("/check", ""))
        await phone_console.screenshot(path=ARTIFACTS / "website-form-phone.png", full_page=True)
        await phone_console.locator("#identity").scroll_into_view_if_needed()
        await phone_console.screenshot(path=ARTIFACTS / "website-form-phone-lower.png")
        await console.locator("#identity").scroll_into_view_if_needed()
        await console.screenshot(path=ARTIFACTS / "website-form-lower.png")
        await phone_console.goto(f"{live_server.url}/console/inboxes")
        await phone_console.screenshot(path=ARTIFACTS / "websites-phone.png", full_page=True)
        await console.goto(f"{live_server.url}/console/")

        # A visitor on the owner's site: the widget wears the site's settings.
        visitor = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await visitor.goto(site_url)
        bubble = visitor.get_by_role("button", name="Open chat")
        await expect(bubble).to_be_visible()
        # The settings come with the welcome, after the bubble first shows: wait for them.
        await expect(bubble).to_have_css("background-color", "rgb(15, 118, 110)")
        await expect(bubble).to_have_css("left", "20px")  # bottom-left
        box = await bubble.bounding_box()
        assert box is not None and box["x"] < 200
        await bubble.click()
        prechat = visitor.locator("form.away")
        await expect(prechat).to_be_visible()
        await expect(prechat.locator("input[name=email]")).to_be_hidden()
        await prechat.locator("textarea[name=message]").fill("Do you have rye bread?")
        await prechat.get_by_role("button", name="Send message").click()
        await expect(prechat).to_be_visible()  # the name is required: nothing sent
        await prechat.locator("input[name=name]").fill("Robin")
        await visitor.screenshot(path=ARTIFACTS / "widget-prechat.png", animations="disabled")
        await prechat.get_by_role("button", name="Send message").click()
        log = visitor.locator(".log")
        await expect(
            log.locator(".row:not(.pend)").get_by_text("Do you have rye bread?")
        ).to_be_visible()
        await expect(log.locator(".intro")).to_contain_text("Welcome to the bakery!")
        await visitor.screenshot(path=ARTIFACTS / "widget-site-settings.png")

        # The agent sees the message live in the console.
        row = console.locator(".conv-row", has_text="Do you have rye bread?")
        await expect(row).to_be_visible()
        await expect(row).to_contain_text("Robin")

        phone_visitor = await (await browser.new_context(viewport=PHONE)).new_page()
        await phone_visitor.goto(site_url)
        await phone_visitor.get_by_role("button", name="Open chat").click()
        await expect(phone_visitor.locator("form.away")).to_be_visible()
        await phone_visitor.screenshot(
            path=ARTIFACTS / "widget-site-settings-phone.png", animations="disabled"
        )


async def test_the_widget_speaks_the_sites_language_and_away_message(live_server, browser):
    hub = live_server.hub
    widget = clean_settings(
        {"language": "fr", "away_message": "Retour à 9 h.", "prechat": {"name": "required"}}
    )
    site = await hub.inboxes.create_website("Boulangerie", ["http://x.test"], widget=widget)
    async with shop_site(live_server.url, site.site_token) as shop_url:
        await hub.inboxes.set_allowed_origins(site.id, [shop_url])
        visitor = await (await browser.new_context(viewport=PHONE)).new_page()
        await visitor.goto(shop_url)
        await visitor.get_by_role("button", name="Open chat").click()
        away = visitor.locator("form.away")  # no agent online: the away form
        await expect(away).to_be_visible()
        await expect(away.locator("p")).to_contain_text("Retour à 9 h.")
        await expect(away.get_by_role("button", name="Envoyer")).to_be_visible()
        await expect(away.locator("input[name=email]")).to_be_visible()
        await expect(visitor.locator(".st")).to_have_text("Nous sommes absents")
        await visitor.screenshot(path=ARTIFACTS / "widget-away-fr-phone.png", animations="disabled")


async def test_an_admin_archives_an_email_inbox_and_a_phone_line(live_server, admin, browser):
    hub = live_server.hub
    inbox, _token = await hub.email_inboxes.create(
        EmailInboxConfig(name="Old support", address="old@shop.test")
    )
    line, _cti = await hub.phone_lines.create("Old line", ["020 7946 0000"], "GB")
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page = await (await browser.new_context(viewport=viewport)).new_page()
        await log_in(page, live_server.url, admin.email)
        await page.goto(f"{live_server.url}/console/email-inboxes/{inbox.id}")
        await page.locator("#archive").scroll_into_view_if_needed()
        await page.screenshot(path=ARTIFACTS / f"email-inbox-archive{suffix}.png")
        await page.goto(f"{live_server.url}/console/phone-lines")
        await page.locator("details.secret summary").first.click()
        archive = page.get_by_role("button", name="Archive this phone line")
        await archive.scroll_into_view_if_needed()
        await page.screenshot(path=ARTIFACTS / f"phone-line-archive{suffix}.png")
    await archive.click()
    await page.wait_for_url(f"{live_server.url}/console/phone-lines")
    await expect(page.get_by_text("No phone lines yet.")).to_be_visible()
    await page.goto(f"{live_server.url}/console/email-inboxes/{inbox.id}")
    await page.get_by_role("button", name="Archive this email inbox").click()
    await page.wait_for_url(f"{live_server.url}/console/email-inboxes")
    await expect(page.locator(f"#inbox-{inbox.id}")).to_have_count(0)
    assert (await hub.inboxes.get(line.inbox_id)).archived
    assert (await hub.inboxes.get(inbox.id)).archived
