"""Mail built to stall a parser, over SMTP and LMTP: refused with a permanent
answer before or while it is read in a worker process, nothing stored, and the
event loop free the whole time."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bench.hostile_mail import empty_parts, many_links, nested_divs
from channels.email.intake import configure_reader
from channels.email.reader import MAX_BOUNDARY_LINES, MailReader, ReaderLimits, prescan
from hub.core import Hub
from hub.settings import MailProtocol, MailSettings
from storage.tables import email_messages
from tests.email_helpers import SUPPORT, make_email_inbox
from tests.test_email_smtp import _transaction, lmtp, mail_server, message, send, ticket_of

SALES = "sales@shop.test"


@pytest.fixture
def tight_budget() -> Iterator[None]:
    """Every message gets a tenth of a second to be read (the default is five)."""
    configure_reader(dataclasses.replace(MailSettings(), parse_seconds=0.1))
    yield
    configure_reader(MailSettings())


async def conversations(hub: Hub) -> int:
    """How many tickets incoming mail opened."""
    async with hub.db.read() as conn:
        query = sa.select(sa.func.count(sa.distinct(email_messages.c.conversation_id)))
        return int(
            (await conn.execute(query.where(email_messages.c.direction == "in"))).scalar_one()
        )


async def test_a_flood_of_empty_parts_is_refused_before_parsing_and_nothing_is_stored(
    hub: Hub,
):
    await make_email_inbox(hub)
    async with mail_server(hub) as server:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await send(server.port, empty_parts(10_000))
        assert refused.value.smtp_code == 554
        assert b"too complex to read" in refused.value.smtp_error
        assert b"MIME parts" in refused.value.smtp_error
        assert await conversations(hub) == 0
        # The same session's server goes on reading ordinary mail.
        assert await send(server.port, message("Where is my order?")) == {}
    assert await conversations(hub) == 1


async def test_a_message_over_the_budget_is_refused_and_the_next_one_is_read(
    hub: Hub, tight_budget: None
):
    await make_email_inbox(hub)
    async with mail_server(hub) as server:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await send(server.port, costly())
        assert refused.value.smtp_code == 554
        assert b"too complex to read" in refused.value.smtp_error
        assert await conversations(hub) == 0
        second = message("Second try, plain text.")
        assert await send(server.port, second) == {}
    [first] = await hub.conversations.messages(await ticket_of(hub, second))
    assert "Second try, plain text." in first.text


async def test_lmtp_refuses_an_unreadable_message_once_per_recipient(hub: Hub):
    await make_email_inbox(hub)
    await make_email_inbox(hub, address=SALES, name="Sales")
    async with mail_server(hub, protocol=MailProtocol.LMTP) as server:
        lines = await lmtp(server.port, _transaction(empty_parts(10_000), (SUPPORT, SALES)), 2)
    assert [line[:9] for line in lines[-2:]] == ["554 5.6.0", "554 5.6.0"]
    assert f"<{SUPPORT}>" in lines[-2] and f"<{SALES}>" in lines[-1]
    assert await conversations(hub) == 0


def costly() -> bytes:
    """A message that takes about a second of CPU to read (four HTML parts of
    30,000 links each)."""
    return many_links(30_000, parts=4)


async def test_the_event_loop_keeps_turning_while_a_costly_message_is_read(hub: Hub):
    """A message that takes about a second to parse and sanitize would hold the
    loop that long if it were read there. Here the loop's longest pause stays
    far below that, and the message is stored."""
    await make_email_inbox(hub)
    longest = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    async with mail_server(hub) as server:
        # A first message starts the reading processes, outside the measurement.
        await send(server.port, message("warm up"))
        ticking = asyncio.create_task(ticker())
        try:
            for _ in range(2):
                assert await send(server.port, costly()) == {}
        finally:
            done.set()
            await ticking
    assert await conversations(hub) == 2
    assert longest < 0.3, f"the loop stood still for {longest:.2f} s"


def test_the_prescan_passes_ordinary_mail_with_many_dash_lines():
    """Lines that start with "--" but are no delimiter of a declared boundary
    (a pasted log, a signature) are not parts."""
    body = "-- a pasted log line\r\n" * (MAX_BOUNDARY_LINES * 2)
    raw = b"Subject: log\r\nContent-Type: text/plain\r\n\r\n" + body.encode()
    assert prescan(raw) is None
    assert prescan(empty_parts(MAX_BOUNDARY_LINES // 2 - 10)) is None
    assert prescan(empty_parts(MAX_BOUNDARY_LINES + 1)) is not None


async def test_html_nested_deeper_than_512_is_flattened_and_its_text_kept(hub: Hub):
    """20,000 nested divs cost the HTML cleaner 0.75 s (its time grows with the
    square of the depth); beyond 512 levels, as in Chromium's parser, the tags
    go and the text stays. Paragraphs left unclosed, as old mailers write
    them, are no nesting and all stay."""
    await make_email_inbox(hub)
    unclosed = "".join(f"<p>paragraph {n}" for n in range(600))
    deep = "<div>" * 20_000 + "the bottom" + "</div>" * 20_000
    raw = nested_divs(0).replace(b"hello", (unclosed + deep + "<b>after</b>").encode())
    async with mail_server(hub) as server:
        assert await send(server.port, raw) == {}
    async with hub.db.read() as conn:
        [(html, text)] = (
            await conn.execute(sa.select(email_messages.c.html, email_messages.c.text))
        ).all()
    assert html.count("<div>") == 512 and html.count("</div>") == 512
    assert html.count("<p>") == 600
    assert "the bottom" in html and "<b>after</b>" in html
    assert "the bottom" in text and "paragraph 599" in text


async def test_the_reading_processes_are_started_off_the_event_loop():
    """Starting the fork server and its workers waits for new interpreters
    (tens of milliseconds): the first read does it in a thread, not on the loop."""
    starters: list[threading.Thread] = []

    class Watched(MailReader):
        def start(self):  # type: ignore[no-untyped-def]
            starters.append(threading.current_thread())
            return super().start()

    reader = Watched(ReaderLimits(workers=1))
    try:
        email = await reader.read(b"Subject: hi\r\n\r\nfirst words\r\n")
        again = await reader.read(b"Subject: hi\r\n\r\nsecond words\r\n")
    finally:
        reader.close()
    assert email.text == "first words" and again.text == "second words"
    assert starters and threading.main_thread() not in starters
