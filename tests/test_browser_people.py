"""The team in a real browser: an admin invites an agent, the invitee joins from the
link and lands in the console; deactivated, the invitee's console says it is signed out.
Screenshots of every team page at desktop and phone width land in test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser import ARTIFACTS, chromium
from tests.test_browser_chat import log_in

DESKTOP = {"width": 1400, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


def _watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def test_an_invited_agent_joins_and_is_signed_out_when_deactivated(
    hub, live_server, admin, browser
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin_context = await browser.new_context(viewport=DESKTOP)
    admin_page = await admin_context.new_page()
    admin_errors = _watch_errors(admin_page)
    await log_in(admin_page, live_server.url, admin.email)

    await admin_page.click("a[href='/console/agents']")
    invite = admin_page.locator("#invite-form")
    await invite.locator("input[name=name]").fill("Ivy Invited")
    await invite.locator("input[name=email]").fill("ivy@example.com")
    await invite.locator("select[name=role]").select_option("agent")
    await invite.locator("button[type=submit]").click()
    link = admin_page.locator("#invitation-link")
    await expect(link).to_be_visible()
    await expect(admin_page.locator("tr", has_text="Ivy Invited")).to_contain_text("Invited")
    await admin_page.screenshot(path=str(ARTIFACTS / "agents-invited.png"), full_page=True)
    url = await link.text_content()
    assert url is not None

    invitee_context = await browser.new_context(viewport=DESKTOP)
    invitee = await invitee_context.new_page()
    invitee_errors = _watch_errors(invitee)
    # The link names HUB_PUBLIC_URL; the test's server listens on a port of its own.
    assert url.startswith(hub.settings.public_url)
    await invitee.goto(live_server.url + url.removeprefix(hub.settings.public_url))
    await expect(invitee.locator("h1")).to_have_text("Welcome, Ivy Invited")
    await invitee.screenshot(path=str(ARTIFACTS / "join.png"))
    await invitee.fill("input[name=password]", "ivy's own password")
    await invitee.fill("input[name=confirm]", "ivy's own password")
    await invitee.click("button[type=submit]")
    await invitee.wait_for_url(f"{live_server.url}/console/")
    await expect(invitee.locator("#live-state")).to_have_attribute("data-state", "online")
    await expect(invitee.locator(".nav-me-name")).to_have_text("Ivy Invited")

    ivy = next(a for a in await hub.agents.list() if a.email == "ivy@example.com")
    await admin_page.goto(f"{live_server.url}/console/agents/{ivy.id}")
    await expect(admin_page.locator(".page-sub")).to_contain_text("Online")
    await admin_page.screenshot(path=str(ARTIFACTS / "agent-page.png"), full_page=True)
    await admin_page.click("#deactivate")
    await expect(admin_page.locator(".alert-success")).to_contain_text("Deactivated")

    overlay = invitee.locator("#signed-out")
    await expect(overlay).to_be_visible()
    await expect(overlay).to_contain_text("deactivated your account")
    await invitee.screenshot(path=str(ARTIFACTS / "signed-out.png"))
    await overlay.locator("button").click()
    await invitee.wait_for_url("**/console/login**")
    await invitee.fill("input[name=email]", "ivy@example.com")
    await invitee.fill("input[name=password]", "ivy's own password")
    await invitee.click("button[type=submit]")
    await expect(invitee.locator(".alert-error")).to_contain_text("deactivated")

    assert admin_errors == [] and invitee_errors == []
    await admin_context.close()
    await invitee_context.close()


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
async def test_team_and_profile_pages_at_each_width(
    hub, live_server, admin, agent, browser, size, viewport
):
    await hub.accounts.set_avatar(
        admin, PNG_PICTURE
    )  # the header and list draw it; Sam has initials
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    errors = _watch_errors(page)
    await log_in(page, live_server.url, admin.email)
    for name, path in [
        ("agents", "/console/agents"),
        ("agent", f"/console/agents/{agent.id}"),
        ("profile", "/console/profile"),
        ("inbox", "/console/"),
    ]:
        await page.goto(f"{live_server.url}{path}")
        await expect(page.locator("#me-presence")).to_have_attribute("data-state", "online")
        await page.screenshot(path=str(ARTIFACTS / f"people-{name}-{size}.png"), full_page=True)
    if size == "desktop":
        # The header's menu: busy, saved at once, kept over a reload.
        await page.select_option("#availability", "busy")
        await expect(page.locator("#me-presence")).to_have_attribute("data-availability", "busy")
        await page.reload()
        await expect(page.locator("#availability")).to_have_value("busy")
    assert errors == []
    await context.close()


# A real 2x2 PNG (one colour), so the browser draws it.
PNG_PICTURE = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
    "0000001049444154789c63888ebe06440c100a0029720631f5cb064a"
    "0000000049454e44ae426082"
)


async def test_colleagues_see_availability_change_live(hub, live_server, admin, agent, browser):
    context = await browser.new_context(viewport=DESKTOP)
    admin_page = await context.new_page()
    errors = _watch_errors(admin_page)
    await log_in(admin_page, live_server.url, admin.email)
    await admin_page.goto(f"{live_server.url}/console/agents")
    await expect(admin_page.locator("#me-presence")).to_have_attribute("data-state", "online")
    sam = admin_page.locator(f'[data-agent-status="{agent.id}"]')
    await expect(sam).to_have_text("Offline")

    agent_context = await browser.new_context(viewport=DESKTOP)
    agent_page = await agent_context.new_page()
    await log_in(agent_page, live_server.url, agent.email)
    await expect(sam).to_have_text("Online")
    await agent_page.select_option("#availability", "busy")
    await expect(sam).to_have_text("Busy")
    await expect(sam).to_have_class("status-busy")
    await agent_context.close()  # the last console tab closes
    await expect(sam).to_have_text("Offline")
    assert errors == []
    await context.close()
