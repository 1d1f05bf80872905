"""IMAP polling against a real dovecot on loopback (tests/imap_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bench.hostile_mail import empty_parts
from channels.email.imap_lease import imap_lease
from channels.email.imap_poller import ImapPoller, ImapPollers, PollSettings
from channels.email.parse import parse_email
from hub.composition.worker import run_once
from hub.core import Hub
from hub.email.inboxes import EmailInbox, EmailInboxConfig, MailServer
from hub.email.models import InboundEmail, TlsMode
from hub.models import utcnow
from storage.tables import email_messages
from tests.email_helpers import SUPPORT, make_email_inbox
from tests.imap_server import USERS, Dovecot, dovecot_server, trusting

SALES = "sales@shop.test"
DEADLINE = 10.0
FAST = PollSettings(first_backoff=0.05, most_backoff=0.2)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def mail(number: int, *, subject: str | None = None, body: str = "", sender: str = "") -> bytes:
    sender = sender or f"customer{number}@customer.test"
    text = body or f"Message number {number}: my order has not arrived."
    return (
        f"From: Customer {number} <{sender}>\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: {subject or f'Order {number}'}\r\n"
        f"Message-ID: <m{number}@customer.test>\r\n"
        f"Date: Mon, 3 Nov 2025 10:00:00 +0000\r\n"
        f"\r\n{text}\r\n"
    ).encode()


async def imap_inbox(
    hub: Hub,
    server: Dovecot,
    address: str = SUPPORT,
    password: str | None = None,
    folder: str = "INBOX",
    tls: TlsMode = TlsMode.NONE,
) -> EmailInbox:
    port = server.tls_port if tls is TlsMode.TLS else server.port
    return await make_email_inbox(
        hub,
        address=address,
        name=address,
        imap_enabled=True,
        imap=MailServer(server.host, port, tls, address),
        imap_password=USERS[address] if password is None else password,
        imap_folder=folder,
    )


async def stored_per_conversation(hub: Hub, inbox: EmailInbox) -> dict[str, int]:
    """How often each Message-ID was stored, and in how many conversations."""
    async with hub.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(email_messages.c.message_id, email_messages.c.conversation_id).where(
                    email_messages.c.email_inbox_id == inbox.id
                )
            )
        ).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.message_id] = counts.get(row.message_id, 0) + 1
    assert len({row.conversation_id for row in rows}) == len(counts)  # one ticket each
    return counts


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"not within {deadline} s")
        await asyncio.sleep(0.05)


async def test_a_poll_stores_each_message_marks_it_seen_and_saves_the_position(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    for number in (1, 2, 3):
        dovecot.append(mail(number))

    assert await ImapPoller(hub, inbox.id).poll_once() == 3

    counts = await stored_per_conversation(hub, inbox)
    assert counts == {f"m{n}@customer.test": 1 for n in (1, 2, 3)}
    assert all("\\Seen" in flags for flags in dovecot.flags().values())
    saved = await hub.email_inboxes.get(inbox.id)
    assert (saved.imap_uidvalidity, saved.imap_last_uid) == (dovecot.uidvalidity(), 3)
    assert saved.imap_error is None and saved.imap_checked_at is not None
    assert await ImapPoller(hub, inbox.id).poll_once() == 0


async def test_mail_read_by_a_person_is_still_fetched(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    with dovecot.client() as imap:
        imap.append("INBOX", "(\\Seen)", None, mail(1))

    assert await ImapPoller(hub, inbox.id).poll_once() == 1


async def test_a_crash_between_store_and_seen_neither_loses_nor_duplicates(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    for number in (1, 2, 3):
        dovecot.append(mail(number))
    crashed = asyncio.Event()

    class CrashingPoller(ImapPoller):
        async def _acknowledge(self, *args: object, **kwargs: object) -> None:
            # The first batch is stored (committed); the worker dies before it
            # marks anything \Seen or saves the position.
            crashed.set()
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
            await asyncio.sleep(0)

    settings = PollSettings(batch_messages=2)
    task = asyncio.create_task(CrashingPoller(hub, inbox.id, settings).run())
    await asyncio.wait_for(crashed.wait(), DEADLINE)
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await stored_per_conversation(hub, inbox) == {
        "m1@customer.test": 1,
        "m2@customer.test": 1,
    }
    assert not any("\\Seen" in flags for flags in dovecot.flags().values())
    assert (await hub.email_inboxes.get(inbox.id)).imap_last_uid == 0

    assert await ImapPoller(hub, inbox.id, settings).poll_once() == 1  # m1, m2: duplicates

    assert await stored_per_conversation(hub, inbox) == {
        f"m{n}@customer.test": 1 for n in (1, 2, 3)
    }
    assert all("\\Seen" in flags for flags in dovecot.flags().values())
    assert (await hub.email_inboxes.get(inbox.id)).imap_last_uid == 3


async def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(hub, dovecot):
    dovecot.create("Support")
    inbox = await imap_inbox(hub, dovecot, folder="Support")
    for number in (1, 2):
        dovecot.append(mail(number), "Support")
    assert await ImapPoller(hub, inbox.id).poll_once() == 2
    before = dovecot.uidvalidity("Support")

    # The mailbox is rebuilt: same mail, new UIDs from 1, and one more message.
    dovecot.delete("Support")
    dovecot.create("Support")
    for number in (1, 2, 3):
        dovecot.append(mail(number), "Support")
    after = dovecot.uidvalidity("Support")
    assert after != before

    assert await ImapPoller(hub, inbox.id).poll_once() == 1

    assert await stored_per_conversation(hub, inbox) == {
        f"m{n}@customer.test": 1 for n in (1, 2, 3)
    }
    saved = await hub.email_inboxes.get(inbox.id)
    assert (saved.imap_uidvalidity, saved.imap_last_uid) == (after, 3)
    assert all("\\Seen" in flags for flags in dovecot.flags("Support").values())


async def test_a_wrong_password_is_shown_on_its_inbox_and_other_inboxes_go_on(hub, dovecot):
    wrong = await imap_inbox(hub, dovecot, password="not-the-password")
    sales = await imap_inbox(hub, dovecot, address=SALES)
    dovecot.append(mail(1), user=SALES)
    stop = asyncio.Event()
    pollers = asyncio.create_task(ImapPollers(hub).run_forever(stop))

    async def both() -> bool:
        failed = await hub.email_inboxes.get(wrong.id)
        return bool(failed.imap_error) and bool(await stored_per_conversation(hub, sales))

    try:
        # Dovecot slows down logins from an address that just failed one (both
        # inboxes poll from 127.0.0.1): the sales inbox gets in after ~4 s.
        await eventually(both, deadline=30)
    finally:
        stop.set()
        await asyncio.wait_for(pollers, DEADLINE)
    error = (await hub.email_inboxes.get(wrong.id)).imap_error
    assert "LOGIN refused" in error and "AUTHENTICATIONFAILED" in error
    assert (await hub.email_inboxes.get(sales.id)).imap_error is None


async def test_an_unreachable_server_is_shown_on_the_inbox(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    await hub.email_inboxes.update(
        inbox.id, _config(inbox, imap=MailServer("127.0.0.1", 1, TlsMode.NONE, SUPPORT))
    )

    assert await ImapPoller(hub, inbox.id).poll_once() == 0

    error = (await hub.email_inboxes.get(inbox.id)).imap_error
    assert error.startswith("cannot connect to 127.0.0.1:1")


async def test_mail_arriving_while_idle_comes_at_once(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    dovecot.append(mail(1))
    # Without IDLE the next poll would be an hour away.
    poller = ImapPoller(hub, inbox.id, PollSettings(poll_every=3600))
    task = asyncio.create_task(poller.run())
    try:
        await eventually(lambda: _true(poller.polls >= 1))
        dovecot.append(mail(2))

        async def arrived() -> bool:
            return len(await stored_per_conversation(hub, inbox)) == 2

        await eventually(arrived)
        await eventually(lambda: _true(poller.polls >= 2))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all("\\Seen" in flags for flags in dovecot.flags().values())


async def test_an_oversized_message_is_skipped_and_flagged_and_the_next_one_stored(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    dovecot.append(mail(1, body="x" * 30_000))
    dovecot.append(mail(2))

    assert await ImapPoller(hub, inbox.id, PollSettings(max_message_bytes=20_000)).poll_once() == 1

    assert await stored_per_conversation(hub, inbox) == {"m2@customer.test": 1}
    flags = dovecot.flags()
    assert "\\Flagged" in flags[1] and "\\Seen" not in flags[1]
    assert "\\Seen" in flags[2]
    saved = await hub.email_inboxes.get(inbox.id)
    assert saved.imap_last_uid == 2
    assert "UID 1 skipped" in saved.imap_error and "limit" in saved.imap_error


async def test_a_message_too_complex_to_read_becomes_an_unreadable_ticket_with_the_raw_kept(
    hub, dovecot
):
    """IMAP cannot refuse: the message already sits in the mailbox."""
    inbox = await imap_inbox(hub, dovecot)
    hostile = empty_parts(10_000, sender="mallory@attacker.test", to=SUPPORT)
    dovecot.append(hostile)
    assert await ImapPoller(hub, inbox.id).poll_once() == 1
    async with hub.db.read() as conn:
        [row] = (await conn.execute(sa.select(email_messages))).all()
    [first] = await hub.conversations.messages(row.conversation_id)
    assert first.text.startswith("This message could not be read (too complex to read:")
    details = await hub.email.details(row.conversation_id)
    [stored] = details.values()
    assert (await hub.email.raw(stored.id))[1] == hostile


async def test_a_message_failing_again_and_again_is_skipped_after_three_attempts(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    dovecot.append(mail(1, body="POISON"))
    dovecot.append(mail(2))

    async def parse(raw: bytes) -> InboundEmail:
        if b"POISON" in raw:
            raise ValueError("cannot store this one")
        return parse_email(raw)

    poller = ImapPoller(hub, inbox.id, parse=parse)
    for _attempt in (1, 2):
        assert await poller.poll_once() == 0
        saved = await hub.email_inboxes.get(inbox.id)
        assert saved.imap_last_uid == 0 and "cannot store this one" in saved.imap_error

    assert await poller.poll_once() == 1

    assert await stored_per_conversation(hub, inbox) == {"m2@customer.test": 1}
    saved = await hub.email_inboxes.get(inbox.id)
    assert saved.imap_last_uid == 2 and "UID 1 skipped after 3 failed attempts" in saved.imap_error
    assert "\\Flagged" in dovecot.flags()[1]


async def test_an_outage_of_the_store_never_skips_a_message(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    dovecot.append(mail(1))

    async def parse(raw: bytes) -> InboundEmail:
        raise OSError("disk gone")

    poller = ImapPoller(hub, inbox.id, parse=parse)
    for _attempt in range(4):
        assert await poller.poll_once() == 0
    assert (await hub.email_inboxes.get(inbox.id)).imap_last_uid == 0

    assert await ImapPoller(hub, inbox.id).poll_once() == 1


@pytest.mark.parametrize("tls", [TlsMode.TLS, TlsMode.STARTTLS])
async def test_polling_over_tls(hub, tls):
    with dovecot_server(tls=True) as server:
        inbox = await imap_inbox(hub, server, tls=tls)
        server.append(mail(1))
        settings = PollSettings(tls_context=lambda: trusting(server))

        assert await ImapPoller(hub, inbox.id, settings).poll_once() == 1

        untrusted = await imap_inbox(hub, server, address=SALES, tls=tls)
        assert await ImapPoller(hub, untrusted.id).poll_once() == 0
        error = (await hub.email_inboxes.get(untrusted.id)).imap_error
        assert "CERTIFICATE_VERIFY_FAILED" in error


async def test_pollers_follow_inboxes_added_and_disabled_in_the_console(hub, dovecot):
    stop = asyncio.Event()
    pollers = ImapPollers(hub, FAST, rescan_every=0.05)
    running = asyncio.create_task(pollers.run_forever(stop))
    try:
        inbox = await imap_inbox(hub, dovecot)
        dovecot.append(mail(1))

        async def stored() -> bool:
            return bool(await stored_per_conversation(hub, inbox))

        await eventually(stored)
        assert set(pollers.tasks) == {inbox.id}

        await hub.email_inboxes.update(inbox.id, _config(inbox, imap_enabled=False))
        await eventually(lambda: _true(not pollers.tasks))
    finally:
        stop.set()
        await asyncio.wait_for(running, DEADLINE)


async def test_an_inbox_is_polled_by_one_worker_at_a_time(hub, dovecot):
    inbox = await imap_inbox(hub, dovecot)
    now = [utcnow()]

    def clock() -> datetime:
        return now[0]

    first = imap_lease(hub.db, inbox.id, "node-a", clock=clock)
    second = imap_lease(hub.db, inbox.id, "node-b", clock=clock)

    assert await first.claim()
    assert not await second.claim()
    assert await ImapPoller(hub, inbox.id, owner="node-b").poll_once() == 0
    assert await first.claim()  # renewed

    now[0] += first.length + timedelta(seconds=1)  # node-a died
    assert await second.claim()
    assert not await first.claim()

    await second.release()
    assert await first.claim()


async def test_worker_once_polls_each_imap_inbox(hub, dovecot):
    await imap_inbox(hub, dovecot)
    dovecot.append(mail(1))

    results = await run_once(hub)

    assert results["imap-poll"] == 1


def _config(inbox: EmailInbox, **changes: object) -> EmailInboxConfig:
    values: dict[str, object] = {
        "name": inbox.name,
        "address": inbox.address,
        "imap_enabled": inbox.imap_enabled,
        "imap": inbox.imap,
        "imap_folder": inbox.imap_folder,
    }
    values.update(changes)
    return EmailInboxConfig(**values)  # type: ignore[arg-type]


async def _true(value: bool) -> bool:
    return value
