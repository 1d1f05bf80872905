"""The call log and the screen pop in headless Chromium, driven by real call events."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from hub.models import Direction
from hub.voice.models import CallEvent, Step
from tests.browser import ARTIFACTS, chromium, docs_image
from tests.test_browser_chat import XSS, log_in


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


@pytest.fixture
async def line(hub):  # type: ignore[no-untyped-def]
    created, _ = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")
    return created


def event(step: Step, call_id: str, number: str = "07700 900123", **fields) -> CallEvent:  # type: ignore[no-untyped-def]
    return CallEvent(
        step=step,
        external_id=call_id,
        source="cti",
        direction=Direction.IN,
        from_number=number,
        to_number="020 7946 0000",
        **fields,
    )


async def test_screen_pop_call_log_call_back_and_logging_a_call(
    hub, live_server, admin, line, browser
):
    ARTIFACTS.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 1400, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await log_in(page, live_server.url, admin.email)
    await page.goto(f"{live_server.url}/console/calls")
    await expect(page.locator("#calls-empty")).to_be_visible()
    # The console socket is up (the presence dot says so) before the phone rings.
    await expect(page.locator("#me-presence")).to_have_attribute("data-state", "online")

    # A known caller whose name is hostile markup: shown as text, never run.
    earlier = await hub.calls.record(line, event(Step.RING, "old", "07700 900555"))
    await hub.calls.record(line, event(Step.HANGUP, "old", "07700 900555", cause="normalClearing"))
    await hub.contacts.update(earlier.call.contact_id, XSS, "")

    await hub.calls.record(line, event(Step.RING, "c1", agents=("Ada Admin",), queue="support"))
    pop = page.locator(".call-pop")
    await expect(pop).to_have_count(1)
    await expect(pop.locator(".call-pop-name")).to_have_text("+44 7700 900123")
    await expect(pop.locator(".call-pop-number")).to_have_text("Unknown number")
    await hub.calls.record(line, event(Step.RING, "c2", "07700 900555"))
    await expect(pop).to_have_count(2)
    await expect(pop.first.locator(".call-pop-name")).to_have_text(XSS)
    await expect(page.locator(".call-row")).to_have_count(3)
    await page.screenshot(path=ARTIFACTS / "calls-screen-pop.png")

    # Answered elsewhere: that pop clears; the log shows the call on the line.
    await hub.calls.record(line, event(Step.ANSWER, "c2", "07700 900555", answered_by="Bea"))
    await expect(pop).to_have_count(1)
    await hub.calls.record(line, event(Step.HANGUP, "c2", "07700 900555", cause="normalClearing"))
    # The other caller gives up: missed, waiting for a call back.
    await hub.calls.record(line, event(Step.HANGUP, "c1", cause="cancel"))
    await expect(pop).to_have_count(0)
    await expect(page.locator("#callback-count")).to_have_text("1")
    assert await page.evaluate("window.__xss") is None

    await page.get_by_role("link", name="Call back").click()
    missed = page.locator(".call-row")
    await expect(missed).to_have_count(1)
    await expect(missed.locator(".pill-callback")).to_be_visible()
    await page.screenshot(path=docs_image("calls.png"))
    await missed.get_by_role("button", name="Called back").click()
    await expect(page.locator("#calls-empty")).to_be_visible()
    await expect(page.locator("#callback-count")).to_have_text("0")

    # Log a call by hand; it lands in the contact's conversation with its note.
    await page.get_by_role("button", name="Log a call").click()
    form = page.locator("#log-form")
    await form.locator("input[name=number]").fill("07700 900123")
    await form.locator("input[name=duration]").fill("3:15")
    await form.locator("textarea[name=notes]").fill("Rang back, sorted the delivery")
    await form.get_by_role("button", name="Save call").click()
    thread = page.locator("#thread")
    await expect(thread.locator(".msg-call")).to_have_count(2)
    await expect(thread.locator(".msg-call").last).to_contain_text(
        "Call to +44 7700 900123 · answered by Ada Admin · 3m 15s"
    )
    await expect(thread.locator(".msg-note .msg-bubble")).to_have_text(
        "Note on the call: Rang back, sorted the delivery"
    )
    await page.screenshot(path=docs_image("call-conversation.png"))

    # The pop shows on every console page; one click makes the caller a contact to name.
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "online")
    await hub.calls.record(line, event(Step.RING, "c3", "07700 900777"))
    await expect(pop).to_have_count(1)
    await pop.get_by_role("link", name="New contact").click()
    await page.fill("input[name=name]", "Grace Hopper")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(".page-title")).to_have_text("Grace Hopper")
    await expect(page.locator(".timeline-call")).to_have_count(1)
    assert errors == []
    await context.close()
