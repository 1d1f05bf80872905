"""Console pages opened on stored history, in headless Chromium: the live elements (list
rows, messages, emails, call rows, a visitor's pages) are drawn by the scripts alone,
from the page's data, and hostile text stays text."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from hub.email.models import Attachment
from hub.models import Direction
from hub.security import identity_hash
from hub.voice.models import CallEvent, Step
from tests.browser import ARTIFACTS, chromium
from tests.console_client import visitor_says
from tests.email_helpers import fail_delivery, inbound, make_email_inbox
from tests.test_browser_chat import XSS, log_in


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


@pytest.fixture
async def console(live_server, admin, browser):  # type: ignore[no-untyped-def]
    """A logged-in admin's page; fails the test on any script error."""
    context = await browser.new_context(viewport={"width": 1400, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await log_in(page, live_server.url, admin.email)
    yield page
    assert errors == []
    assert await page.evaluate("window.__xss") is None
    await context.close()


async def _open(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("#me-presence")).to_have_attribute("data-state", "online")


async def test_a_chat_opens_with_its_whole_history_and_the_visitors_pages(
    hub, live_server, website, admin, console
):
    visitor, posted = await visitor_says(hub, website, "Where is my order?")
    conversation_id = posted.conversation.id
    await hub.tracking.arrive(visitor, website, "https://shop.test/cart", "Cart")
    await hub.tracking.page_view(visitor, website, "https://shop.test/p/1", XSS)
    await hub.conversations.assign(admin, conversation_id, admin.id)
    await hub.conversations.reply(admin, conversation_id, "Let me check.")
    await hub.conversations.reply(admin, conversation_id, "Order 42 is late", private=True)
    await visitor_says(hub, website, XSS, visitor=visitor)

    await _open(console, f"{live_server.url}/console/conversations/{conversation_id}")
    thread = console.locator("#thread > li")
    await expect(thread).to_have_count(5)
    await expect(thread.nth(0)).to_have_class("msg msg-in")
    await expect(thread.nth(0).locator(".msg-bubble")).to_have_text("Where is my order?")
    await expect(thread.nth(1)).to_have_class("msg msg-activity")
    await expect(thread.nth(2).locator(".msg-bubble")).to_have_text("Let me check.")
    await expect(thread.nth(3)).to_have_class("msg msg-out msg-note")
    await expect(thread.nth(3).locator(".msg-label")).to_have_text("Private note")
    await expect(thread.nth(4).locator(".msg-bubble")).to_have_text(XSS)
    await expect(console.locator("#thread img")).to_have_count(0)

    [row] = await console.locator(".conv-row").all()
    await expect(row).to_have_class("conv-row is-active")
    await expect(row.locator(".conv-preview")).to_have_text(XSS)
    await expect(row.locator(".badge")).to_be_hidden()

    # The side panel: the page they are on, and their latest pages first.
    await expect(console.locator("#side-page-title")).to_have_text(XSS)
    link = console.locator("#side-page-url a.visit-url")
    await expect(link).to_have_attribute("href", "https://shop.test/p/1")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(console.locator("#side-trail .trail-title")).to_have_text([XSS, "Cart"])
    await expect(console.locator("#side-page-none")).to_be_hidden()


async def test_a_page_address_that_is_not_a_web_url_is_text_not_a_link(
    hub, live_server, website, console
):
    visitor, posted = await visitor_says(hub, website, "hi")
    await hub.visitors.seen(visitor.id, "javascript:window.__xss=1", "Evil")
    await _open(console, f"{live_server.url}/console/conversations/{posted.conversation.id}")
    await expect(console.locator("#side-page-url span.visit-url")).to_have_text(
        "javascript:window.__xss=1"
    )
    await expect(console.locator('a[href^="javascript:"]')).to_have_count(0)


async def test_an_email_ticket_opens_with_its_files_an_unreadable_mail_and_a_failed_reply(
    hub, live_server, admin, console
):
    inbox = await make_email_inbox(hub)
    received = await hub.email.ingest(
        inbox,
        inbound(
            "Hello there",
            message_id="first@customer.test",
            attachments=(Attachment("invoice <2024>.html", "text/html", b"<b>x</b>"),),
        ),
    )
    ticket = received.conversation_id
    assert ticket is not None
    await hub.email.ingest(
        inbox,
        inbound(
            "garbage",
            subject="Re: Where is my order?",
            in_reply_to=("first@customer.test",),
            parse_error="broken MIME boundary",
        ),
    )
    reply = await hub.conversations.reply(admin, ticket, "We are on it.")
    await fail_delivery(hub, ticket, reply.message.seq, "550 5.1.1 mailbox unknown")

    await _open(console, f"{live_server.url}/console/conversations/{ticket}")
    first = console.locator("#thread > li.msg-email").first
    await expect(first.locator(".email-text")).to_have_text("Hello there")
    await expect(first.locator(".email-file-name")).to_have_text("invoice <2024>.html")
    unreadable = console.locator("li.msg-unreadable")
    await expect(unreadable.locator(".email-unreadable")).to_contain_text(
        "could not be read (broken MIME boundary)"
    )
    raw = unreadable.get_by_role("link", name="Download original (.eml)")
    await expect(raw).to_have_attribute(
        "href", f"/console/emails/{await _last_email_id(hub, ticket)}/raw"
    )
    failed = console.locator(f'li[data-seq="{reply.message.seq}"] .email-state')
    await expect(failed).to_have_attribute("data-state", "failed")
    await expect(failed).to_contain_text("Not delivered: 550 5.1.1 mailbox unknown")
    await expect(failed.get_by_role("button", name="Retry")).to_be_visible()


async def _last_email_id(hub, conversation_id: int) -> int:  # type: ignore[no-untyped-def]
    details = await hub.email.details(conversation_id)
    return max(d.id for d in details.values() if d.parse_error)


async def test_the_call_log_opens_with_the_calls_already_made(hub, live_server, console):
    line, _ = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")

    def event(step: Step, **fields) -> CallEvent:  # type: ignore[no-untyped-def]
        return CallEvent(
            step=step,
            external_id="c1",
            source="cti",
            direction=Direction.IN,
            from_number="07700 900123",
            to_number="020 7946 0000",
            **fields,
        )

    rang = await hub.calls.record(line, event(Step.RING))
    await hub.calls.record(line, event(Step.HANGUP, cause="noAnswer"))
    await hub.contacts.update(rang.call.contact_id, XSS, "")

    await _open(console, f"{live_server.url}/console/calls")
    [row] = await console.locator(".call-row").all()
    await expect(row.locator(".call-who")).to_have_text(XSS)
    await expect(row.locator(".pill-callback")).to_have_text("Call back")
    await expect(row.get_by_role("button", name="Called back")).to_be_visible()
    await expect(console.locator("#calls-empty")).to_be_hidden()


async def test_an_admin_ticks_require_identity_on_the_website_page(hub, live_server, console):
    website = await hub.inboxes.create_website("Corner shop", ["http://shop.test"])
    await _open(console, f"{live_server.url}/console/inboxes/{website.id}")
    form = console.locator(f"form[action='/console/inboxes/{website.id}']")
    box = form.locator("input[name=require_identity]")
    await expect(box).not_to_be_checked()
    await box.check()
    await form.get_by_role("button", name="Save changes").click()
    await expect(console.locator(".alert-success")).to_have_text("Saved.")
    await expect(form.locator("input[name=require_identity]")).to_be_checked()
    assert (await hub.inboxes.get(website.id)).require_identity is True
    await form.locator("#identity").scroll_into_view_if_needed()
    await console.screenshot(path=ARTIFACTS / "inboxes-require-identity.png")


async def test_the_contact_panel_marks_claimed_details_and_then_verified_ones_live(
    hub, live_server, website, console
):
    visitor, posted = await visitor_says(hub, website, "Is my order here?")
    url = f"{live_server.url}/console/conversations/{posted.conversation.id}"
    await _open(console, url)
    email = console.locator("#side-contact-email")
    external = console.locator("#side-contact-external")
    name_mark = console.locator("#side-contact-name .detail-mark")
    await expect(email).to_have_text("—")
    # An unsigned identify: the panel redraws from the `contact` frame, marked claimed.
    await hub.visitors.identify(visitor, website, "user-9", email="nia@example.com", name="Nia")
    await expect(email.locator(".detail-value")).to_have_text("nia@example.com")
    await expect(email.locator(".detail-mark")).to_have_attribute("data-mark", "claimed")
    await expect(external.locator(".detail-mark")).to_have_attribute("data-mark", "claimed")
    await expect(name_mark).to_have_text("claimed")
    await _open(console, url)  # the page drawn by the server marks them the same way
    await expect(email.locator(".detail-mark")).to_have_attribute("data-mark", "claimed")
    await expect(external.locator(".detail-value")).to_have_text("user-9")
    await expect(name_mark).to_have_text("claimed")
    await console.locator(".side").screenshot(path=ARTIFACTS / "contact-panel-claimed.png")
    # The site proves who she is: verified, live.
    signed = identity_hash(website.identity_secret, "user-9")
    await hub.visitors.identify(
        visitor, website, "user-9", email="nia@example.com", name="Nia", claimed_hash=signed
    )
    await expect(email.locator(".detail-mark")).to_have_attribute("data-mark", "verified")
    await expect(external.locator(".detail-mark")).to_have_attribute("data-mark", "verified")
    await expect(name_mark).to_have_count(0)
    await expect(console.locator("#side-email")).to_have_text("nia@example.com")


async def test_an_admin_reads_the_log_of_bounces_that_matched_no_sent_mail(
    hub, live_server, console
):
    from tests.test_email_bounces import _deliver, dsn

    await make_email_inbox(hub)
    await _deliver(
        hub,
        dsn(
            "forged-456@elsewhere.test",
            [("victim@customer.test", "failed", "5.7.1", "550 5.7.1 <b>rejected</b> as spam")],
        ),
    )
    await _open(console, f"{live_server.url}/console/email-inboxes")
    await console.locator("a[href='/console/bounces']").first.click()
    await expect(console).to_have_url(f"{live_server.url}/console/bounces")
    await expect(console.get_by_text("victim@customer.test").first).to_be_visible()
    await expect(console.get_by_text("<b>rejected</b>", exact=False).first).to_be_visible()
    await console.screenshot(path=ARTIFACTS / "bounce-log.png")


async def test_an_admin_keeps_an_inbox_to_a_team_and_an_outsider_no_longer_sees_it(
    hub, live_server, website, agent, console, browser
):
    await visitor_says(hub, website, "A question only sales should see")
    await _open(console, f"{live_server.url}/console/teams")
    await console.get_by_placeholder("Sales").fill("Sales")
    await console.get_by_role("button", name="Add team").click()
    await expect(console.get_by_text("Saved.")).to_be_visible()
    form = console.locator(f"#access-{website.id}")
    await form.get_by_text("Only these members").click()
    await form.get_by_text("Sales", exact=False).first.click()
    await form.get_by_role("button", name="Save").click()
    await expect(console.get_by_text("Saved.")).to_be_visible()
    await console.screenshot(path=ARTIFACTS / "teams-and-access.png", full_page=True)

    context = await browser.new_context(viewport={"width": 390, "height": 800})
    outsider = await context.new_page()
    await log_in(outsider, live_server.url, agent.email)
    await _open(outsider, f"{live_server.url}/console/")
    await expect(outsider.get_by_text("A question only sales should see")).to_have_count(0)
    await outsider.screenshot(path=ARTIFACTS / "teams-outsider-inbox.png")
    await context.close()


async def test_a_new_admin_sees_the_first_run_checklist(hub, live_server, console):
    await hub.inboxes.create_website("My shop", ["https://my-shop.test"])
    await _open(console, f"{live_server.url}/console/")
    checklist = console.locator(".checklist")
    await expect(checklist).to_contain_text("1 of 4 done")
    await checklist.get_by_role("link", name="Connect your email").click()
    await expect(console).to_have_url(f"{live_server.url}/console/email-inboxes/new")
    await _open(console, f"{live_server.url}/console/")
    await console.screenshot(path=ARTIFACTS / "first-run-checklist.png")
    await console.set_viewport_size({"width": 390, "height": 800})
    await console.screenshot(path=ARTIFACTS / "first-run-checklist-phone.png")


async def test_a_conversation_fills_a_phone_and_the_list_is_one_tap_back(
    hub, live_server, website, console
):
    _, posted = await visitor_says(hub, website, "Is my parcel on its way?")
    await console.set_viewport_size({"width": 390, "height": 800})
    await _open(console, f"{live_server.url}/console/conversations/{posted.conversation.id}")
    message = console.locator("#thread").get_by_text("Is my parcel on its way?")
    await expect(message).to_be_in_viewport()
    await expect(console.locator("#conv-list")).to_be_hidden()
    await expect(console.locator("#composer-text")).to_be_in_viewport()
    box = await console.locator("#conv").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    await console.screenshot(path=ARTIFACTS / "conversation-phone.png")
    await console.get_by_role("link", name="Back to the list").click()
    await expect(console.locator("#conv")).to_have_count(0)
    await expect(
        console.locator("#conv-list").get_by_text("Is my parcel on its way?")
    ).to_be_visible()
