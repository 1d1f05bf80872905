"""End to end in headless Chromium: an emailed ticket arrives live, the agent replies with a
file, the outbox (running in the test server) delivers it to an SMTP sink on loopback as
a correctly threaded email, and the console shows it sent, live."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import pytest
from playwright.async_api import Page, expect

from channels.email.smtp_server import start_mail_server
from hub.composition.worker import run_background
from hub.core import Hub
from tests.browser import ARTIFACTS, chromium, docs_image
from tests.email_helpers import SUPPORT, inbound, make_email_inbox
from tests.mail_servers import Sink, smtp_sink
from tests.test_browser_chat import log_in

CUSTOMER_ID = "order-question.1@customer.test"


@dataclass(frozen=True)
class IngestedTicket:
    conversation_id: int


SINK_WAIT_SECONDS = 20
IMAGE_WAIT_SECONDS = 5


def _png(width: int = 24, height: int = 24, rgb: tuple[int, int, int] = (91, 91, 214)) -> bytes:
    """A small solid PNG, so the inline (cid:) image visibly loads."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    async with chromium() as started:
        yield started


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with smtp_sink() as started:
        yield started


@pytest.fixture
async def outbox(live_server) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """What `create_app(..., run_jobs=True)` runs: the jobs and the email outbox, in the
    server's process and loop (the live_server fixture shares its hub with the test)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_background(live_server.hub, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _loaded_width(image) -> int:  # type: ignore[no-untyped-def]
    """An image's natural width once it has loaded (0 when it failed or was blocked)."""
    async with asyncio.timeout(IMAGE_WAIT_SECONDS):
        return await image.evaluate(
            """img => img.complete ? img.naturalWidth : new Promise((done) => {
                 const settle = () => done(img.naturalWidth);
                 img.addEventListener("load", settle);
                 img.addEventListener("error", settle);
               })"""
        )


async def _open_ticket(console: Page, subject: str) -> None:
    row = console.locator(".conv-row", has_text=subject)
    await expect(row).to_be_visible()
    await expect(row.locator(".conv-subject")).to_have_text(subject)
    await row.locator("a").click()
    await expect(console.locator("#ticket-head .ticket-subject")).to_have_text(subject)


async def test_an_emailed_ticket_is_answered_by_email_and_shown_sent_live(
    live_server, admin, sink: Sink, outbox, browser
):
    hub: Hub = live_server.hub
    ARTIFACTS.mkdir(exist_ok=True)
    inbox = await make_email_inbox(hub, smtp_port=sink.port, signature="The Shop team")
    context = await browser.new_context(viewport={"width": 1440, "height": 960})
    console = await context.new_page()
    await log_in(console, live_server.url, admin.email)

    # A customer writes (as the SMTP server, IMAP poller or HTTP intake would hand it over).
    html = (
        "<p>Hello,</p><p>my order <b>#5521</b> has not arrived yet. Photo of the label:</p>"
        '<p><img src="cid:label@customer.test" alt="label" width="24" height="24"></p>'
        '<p><img src="https://tracker.invalid/pixel.gif" alt="tracker"></p>'
    )
    text = "Hello,\n\nmy order #5521 has not arrived yet. Photo of the label attached."
    # It arrives as real mail: MIME from Python's email package, over SMTP to the hub's
    # own mail server, parsed by channels/email/parse.py.
    mail = EmailMessage()
    mail["From"] = "Alice Doe <alice@customer.test>"
    mail["To"] = SUPPORT
    mail["Cc"] = "bob.longname-for-wrapping@customer-accounts.example"
    mail["Subject"] = "Where is my order?"
    mail["Message-ID"] = f"<{CUSTOMER_ID}>"
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    mail.get_payload()[1].add_related(
        _png(), maintype="image", subtype="png", cid="<label@customer.test>", filename="label.png"
    )
    mail.add_attachment(
        b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf"
    )
    listener = await start_mail_server(hub, host="127.0.0.1", port=0)
    try:
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=listener.port, start_tls=False)
    finally:
        await listener.close()
    [conversation] = await hub.conversations.list_for_agent(admin)
    ingested = IngestedTicket(conversation.id)
    ticket = ingested.conversation_id
    assert ticket is not None

    # It appears live in the list, with its subject; the agent opens it.
    await _open_ticket(console, "Where is my order?")
    thread = console.locator("#thread")
    incoming = thread.locator(".msg-email.msg-in")
    await expect(incoming.locator(".email-text")).to_have_text(text)
    await expect(incoming.locator(".email-head")).to_contain_text("alice@customer.test")
    # The inline image is part of the HTML; only the receipt is listed as a file.
    await expect(incoming.locator(".email-file")).to_have_count(1)
    await expect(console.locator("#composer-to")).to_contain_text("alice@customer.test")

    # "Show original": the sanitized HTML in a sandboxed frame; the cid image loads,
    # the remote one does not.
    await incoming.locator(".email-original > summary").click()
    frame_el = incoming.locator("iframe.email-frame")
    sandbox = await frame_el.get_attribute("sandbox")
    assert sandbox is not None and "allow-scripts" not in sandbox
    frame = console.frame_locator("iframe.email-frame")
    label = frame.locator('img[alt="label"]')
    await expect(label).to_be_visible()
    assert await _loaded_width(label) == 24
    tracker = frame.locator('img[alt="tracker"]')
    assert await _loaded_width(tracker) == 0

    # The agent replies with a file.
    upload = ARTIFACTS / "tracking-note.txt"
    upload.write_text("Tracking number: ZX-5521\n")
    await console.fill("#composer-text", "Sorry for the wait! Your parcel is on its way.")
    await console.set_input_files("#composer-file-input", str(upload))
    await expect(console.locator("#composer-files")).to_contain_text("tracking-note.txt")
    await console.press("#composer-text", "Enter")

    # The sink receives one correctly threaded email.
    received = await asyncio.wait_for(sink.next_message(), SINK_WAIT_SECONDS)
    message = received.message
    thread_info = await hub.email.thread(ticket)
    assert thread_info is not None
    assert message["In-Reply-To"] == f"<{CUSTOMER_ID}>"
    assert f"<{CUSTOMER_ID}>" in message["References"]
    assert message["Subject"] == f"Re: Where is my order? [#{ticket}]"
    assert message["From"].addresses[0].addr_spec == SUPPORT
    assert message["Reply-To"].addresses[0].addr_spec == thread_info["reply_address"]
    assert "bob.longname-for-wrapping@customer-accounts.example" in message["Cc"]
    assert sorted(received.recipients) == [
        "alice@customer.test",
        "bob.longname-for-wrapping@customer-accounts.example",
    ]
    files = [part for part in message.iter_attachments()]
    assert [part.get_filename() for part in files] == ["tracking-note.txt"]
    assert files[0].get_content() == "Tracking number: ZX-5521\n"
    assert "Your parcel is on its way." in message.get_body(("plain",)).get_content()

    # The console shows the reply sent, live (no reload).
    outgoing = thread.locator(".msg-email.msg-out")
    await expect(outgoing.locator(".email-state")).to_have_attribute("data-state", "sent")
    await expect(outgoing.locator(".email-file-name")).to_have_text(["tracking-note.txt"])
    await console.screenshot(path=ARTIFACTS / "browser-email-original.png")
    await incoming.locator(".email-original > summary").click()  # fold the original again
    await console.locator("#thread-scroll").evaluate("node => { node.scrollTop = 0; }")
    await console.screenshot(path=docs_image("email-ticket.png"))

    # The admin page: a new intake URL is shown once, then never again.
    await console.goto(f"{live_server.url}/console/email-inboxes")
    card = console.locator(f"#inbox-{inbox.id}")
    await card.get_by_role("button", name="New intake URL").click()
    await expect(card.locator(f"#intake-{inbox.id}")).to_contain_text("/email/inbound/")
    await console.screenshot(path=docs_image("email-inbox-settings.png"), full_page=True)
    await console.reload()
    await expect(card.locator(f"#intake-{inbox.id}")).to_have_count(0)
    await context.close()


async def test_a_failed_send_turns_into_a_retry_and_then_sent_live(
    live_server, admin, sink: Sink, outbox, browser
):
    hub: Hub = live_server.hub
    inbox = await make_email_inbox(hub, smtp_port=sink.port)
    ingested = await hub.email.ingest(inbox, inbound("Can I change my address?"))
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    console = await context.new_page()
    await log_in(console, live_server.url, admin.email)
    await console.goto(f"{live_server.url}/console/conversations/{ingested.conversation_id}")
    await expect(console.locator("#live-state")).to_have_attribute("data-state", "online")

    sink.handler.answer = "550 5.1.1 mailbox unavailable"
    await console.fill("#composer-text", "Yes, reply with the new one.")
    await console.press("#composer-text", "Enter")
    state = console.locator(".msg-email.msg-out .email-state")
    await expect(state).to_have_attribute("data-state", "failed")
    await expect(state).to_contain_text("550 5.1.1 mailbox unavailable")

    sink.handler.answer = "250 OK"
    # The answer to the Retry (queued) is handed over only after the send it starts
    # has shown live as sent: an answer overtaken like this must not undo that
    # (it did, now and then, with the answer and the live event racing).
    answer_held = asyncio.Event()

    async def held_back(route):  # type: ignore[no-untyped-def]
        response = await route.fetch()
        await answer_held.wait()
        await route.fulfill(response=response)

    await console.route("**/retry", held_back, times=1)
    await state.get_by_role("button", name="Retry").click()
    await expect(state).to_have_attribute("data-state", "sent")
    async with console.expect_event("requestfinished", lambda r: r.url.endswith("/retry")):
        answer_held.set()
    await console.evaluate("() => new Promise((done) => setTimeout(done))")  # its handler ran
    await expect(state).to_have_attribute("data-state", "sent")
    received = await asyncio.wait_for(sink.next_message(), SINK_WAIT_SECONDS)
    assert "Yes, reply with the new one." in received.message.get_body(("plain",)).get_content()
    await context.close()


async def test_an_admin_adds_an_email_inbox_and_sees_mistakes_next_to_their_fields(
    live_server, admin, browser
):
    hub: Hub = live_server.hub
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await log_in(page, live_server.url, admin.email)
    await page.goto(f"{live_server.url}/console/email-inboxes/new")
    await page.fill("input[name=name]", "Billing")
    await page.fill("input[name=address]", "billing@shop.test")
    await page.fill("input[name=smtp_host]", "smtp.shop.test")
    await page.fill("input[name=smtp_port]", "99999")
    await page.fill("input[name=smtp_password]", "typed-secret-99")
    await page.get_by_role("button", name="Add email inbox").click()
    error = page.locator("#smtp_port-error")
    await expect(error).to_have_text("Must be a port number (1-65535).")
    await expect(page.locator("input[name=smtp_password]")).to_have_value("")
    await expect(page.locator("input[name=address]")).to_have_value("billing@shop.test")
    await page.screenshot(path=ARTIFACTS / "browser-email-inbox-form-error.png", full_page=True)
    assert await hub.email_inboxes.list() == []

    await page.fill("input[name=smtp_port]", "587")
    await page.fill("input[name=smtp_password]", "typed-secret-99")
    await page.get_by_role("button", name="Add email inbox").click()
    await expect(page.locator("code[id^=intake-]")).to_contain_text("/email/inbound/")
    [inbox] = await hub.email_inboxes.list()
    assert (inbox.address, inbox.smtp.port) == ("billing@shop.test", 587)
    assert "typed-secret-99" not in await page.content()
    await context.close()
