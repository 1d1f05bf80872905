"""Two-factor login in Chromium: an agent sets it up from the Security page (the QR
code drawn, the key as text, a wrong code refused), then logs in with a code that
pyotp computes here, and with a recovery code at phone width. Screenshots in
test-artifacts/ (two-factor-*.png) for people to look at."""

from __future__ import annotations

import pyotp
import pytest
from playwright.async_api import Page, expect

from hub.core import Hub
from hub.models import Agent
from tests.browser import ARTIFACTS, chromium
from tests.clock import FakeClock
from tests.conftest import LiveServer
from tests.console_client import AGENT_PASSWORD

DESKTOP = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


async def _new_page(browser, viewport: dict[str, int], errors: list[str]) -> Page:  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


async def _password(page: Page, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/console/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", AGENT_PASSWORD)
    await page.click("button[type=submit]")


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_an_agent_sets_up_two_factor_and_logs_in_with_a_code(
    hub: Hub, live_server: LiveServer, agent: Agent, admin: Agent, browser
) -> None:
    clock = FakeClock()
    hub.two_factor.clock = clock
    base = live_server.url
    errors: list[str] = []
    page = await _new_page(browser, DESKTOP, errors)

    await _password(page, base, agent.email)
    await page.wait_for_url(f"{base}/console/")
    await page.click("nav >> text=Security")
    await page.wait_for_url(f"{base}/console/security")
    qr = page.locator(".tf-qr svg.qr-code")
    await expect(qr).to_be_visible()
    box = await qr.bounding_box()
    assert box and box["width"] >= 150  # big enough for a phone's camera
    secret = await page.locator(".tf-secret").get_attribute("data-secret")
    assert secret
    shown = await page.locator(".tf-secret").inner_text()
    assert shown.replace(" ", "") == secret
    app = pyotp.TOTP(secret)
    await _shot(page, "two-factor-setup.png")

    code = page.locator("input[name=code]")
    await expect(code).to_be_focused()
    await code.fill("000000" if app.at(clock()) != "000000" else "111111")
    await page.keyboard.press("Enter")
    await expect(page.locator(".alert-error")).to_contain_text("That code is not right")
    await page.locator("input[name=code]").fill(app.at(clock()))
    await page.keyboard.press("Enter")
    await expect(page.locator(".auth-title")).to_have_text("Save your recovery codes")
    codes = await page.locator(".tf-codes code").all_inner_texts()
    assert len(codes) == 10
    await _shot(page, "two-factor-recovery-codes.png")
    await page.click("text=I have saved them")
    await page.wait_for_url(f"{base}/console/security")
    await expect(page.locator(".card-title .pill-on")).to_have_text("On")
    await _shot(page, "two-factor-on.png")

    await page.click("button[aria-label='Log out']")
    await page.wait_for_url(f"{base}/console/login")
    await _password(page, base, agent.email)
    await page.wait_for_url(f"{base}/console/login/code")
    await expect(page.locator("input[name=code]")).to_be_focused()
    await _shot(page, "two-factor-login.png")
    clock.advance(30)  # the set-up's code counts once
    await page.keyboard.type(app.at(clock()))
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/console/")
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "online")

    # At phone width: the code page, then a recovery code in place of a code.
    phone = await _new_page(browser, PHONE, errors)
    await _password(phone, base, agent.email)
    await phone.wait_for_url(f"{base}/console/login/code")
    await _shot(phone, "two-factor-login-phone.png")
    await phone.click("text=Use a recovery code")
    await phone.locator("input[name=code]").fill(codes[0])
    await phone.keyboard.press("Enter")
    await phone.wait_for_url(f"{base}/console/")
    await phone.goto(f"{base}/console/security")
    await expect(phone.locator(".card").first).to_contain_text("9 of 10 recovery codes left")
    await _shot(phone, "two-factor-on-phone.png")

    # An admin's set-up at phone width, and the admins' page.
    admin_phone = await _new_page(browser, PHONE, errors)
    await _password(admin_phone, base, admin.email)
    await admin_phone.wait_for_url(f"{base}/console/")
    await admin_phone.goto(f"{base}/console/security")
    await expect(admin_phone.locator(".tf-qr svg")).to_be_visible()
    await _shot(admin_phone, "two-factor-setup-phone.png")
    admin_page = await _new_page(browser, DESKTOP, errors)
    await _password(admin_page, base, admin.email)
    await admin_page.wait_for_url(f"{base}/console/")
    await admin_page.click("nav >> text=Two-factor login")
    await expect(admin_page.locator(".page-title")).to_have_text("Two-factor login")
    await expect(admin_page.locator("table .pill-on")).to_have_count(1)
    await _shot(admin_page, "two-factor-admin.png")
    await admin_phone.goto(f"{base}/console/team-security")
    await _shot(admin_phone, "two-factor-admin-phone.png")
    assert errors == []


async def test_required_two_factor_is_set_up_right_after_the_password(
    hub: Hub, live_server: LiveServer, agent: Agent, admin: Agent, browser
) -> None:
    clock = FakeClock()
    hub.two_factor.clock = clock
    enrollment = await hub.two_factor.begin(admin)
    await hub.two_factor.confirm(admin, pyotp.TOTP(enrollment.secret).at(clock()))
    await hub.two_factor.set_required(admin, True)
    base = live_server.url
    errors: list[str] = []
    for name, viewport in (("", DESKTOP), ("-phone", PHONE)):
        page = await _new_page(browser, viewport, errors)
        await _password(page, base, agent.email)
        await page.wait_for_url(f"{base}/console/login/two-factor-setup")
        await expect(page.locator(".auth-title")).to_have_text("Set up two-factor login")
        await expect(page.locator(".tf-qr svg")).to_be_visible()
        await _shot(page, f"two-factor-required-setup{name}.png")
    # The phone's page finishes the set-up.
    secret = await page.locator(".tf-secret").get_attribute("data-secret")
    assert secret
    await page.locator("input[name=code]").fill(pyotp.TOTP(secret).at(clock()))
    await page.keyboard.press("Enter")
    await expect(page.locator(".auth-title")).to_have_text("Save your recovery codes")
    await _shot(page, "two-factor-recovery-codes-phone.png")
    await page.click("text=I have saved them")
    await page.wait_for_url(f"{base}/console/")
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "online")
    assert errors == []
