"""Delivery reports and bounces, read from realistic mail (RFC 3464 reports of
several recipients, delays, successes) and attached to the reply they are about."""

from __future__ import annotations

from email.header import Header

import pytest
import sqlalchemy as sa

from channels.email.parse import parse_email
from hub.core import Hub
from hub.email.models import Envelope, OutboxState
from hub.email.ticket_reads import EmailDetails
from hub.models import Agent
from storage.tables import conversations
from tests.console_client import Console
from tests.email_helpers import SUPPORT, inbound, make_email_inbox
from tests.engines import settings  # noqa: F401 - runs every test on both engines

_BLOCK = """Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.customer.test
Diagnostic-Code: smtp; {diagnostic}
"""


def dsn(
    original_id: str,
    recipients: list[tuple[str, str, str, str]],
    *,
    subject: str = "Delivery Status Notification",
    sender: str = "MAILER-DAEMON@mx.shop.test",
    report_type: str = "; report-type=delivery-status",
) -> bytes:
    """A multipart/report as Postfix writes it: prose, one status block per
    (recipient, action, status, diagnostic), the original's headers."""
    blocks = "\n".join(
        _BLOCK.format(recipient=r, action=a, status=s, diagnostic=d) for r, a, s, d in recipients
    )
    return f"""Return-Path: <>
From: Mail Delivery System <{sender}>
To: {SUPPORT}
Subject: {subject}
Date: Fri, 04 Dec 2026 10:05:00 +0000
Message-ID: <dsn-{abs(hash((original_id, subject, blocks)))}@mx.shop.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report{report_type};
\tboundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.shop.test.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.test
Arrival-Date: Fri, 04 Dec 2026 10:04:58 +0000

{blocks}
--BOUNDARY
Content-Type: text/rfc822-headers

From: Shop Support <{SUPPORT}>
To: alice@customer.test
Subject: Re: Where is my order?
Message-ID: <{original_id}>

--BOUNDARY--
""".replace("\n", "\r\n").encode()


async def _replied(hub: Hub, agent: Agent) -> tuple[int, EmailDetails]:
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    await hub.conversations.reply(agent, first.conversation_id, "Answer")
    [ours] = [
        d
        for d in (await hub.email.details(first.conversation_id)).values()
        if d.direction.value == "out"
    ]
    return first.conversation_id, ours


async def _deliver(hub: Hub, raw: bytes) -> str:
    inbox = (await hub.email_inboxes.list())[0]
    result = await hub.email.ingest(inbox, parse_email(raw), Envelope((SUPPORT,), mail_from=""))
    return result.outcome


async def _reply_now(hub: Hub, conversation_id: int, seq: int) -> EmailDetails:
    return (await hub.email.details(conversation_id))[seq]


async def test_a_delay_notice_shows_the_reply_delayed_with_the_reason(hub: Hub, agent: Agent):
    conversation_id, ours = await _replied(hub, agent)
    raw = dsn(
        ours.message_id,
        [("alice@customer.test", "delayed", "4.4.1", "451 4.4.1 mailbox temporarily full")],
        subject="Delayed Mail (still being retried)",
    )
    assert await _deliver(hub, raw) == "bounce"
    reply = await _reply_now(hub, conversation_id, ours.seq)
    assert reply.state is not OutboxState.FAILED
    assert reply.delivery == "delayed"
    assert reply.delivery_note is not None and "4.4.1" in reply.delivery_note
    assert "temporarily full" in reply.delivery_note
    assert reply.to_wire()["delivery"] == "delayed"
    messages = await hub.conversations.messages(conversation_id)
    assert "delayed" in messages[-1].text


async def test_a_success_report_shows_the_reply_delivered(hub: Hub, agent: Agent):
    conversation_id, ours = await _replied(hub, agent)
    raw = dsn(
        ours.message_id,
        [("alice@customer.test", "delivered", "2.0.0", "250 2.0.0 Ok: queued as 4F2A")],
        subject="Successful Mail Delivery Report",
    )
    assert await _deliver(hub, raw) == "bounce"
    reply = await _reply_now(hub, conversation_id, ours.seq)
    assert reply.state is not OutboxState.FAILED and reply.error is None
    assert reply.delivery == "delivered"


async def test_relayed_and_expanded_count_as_delivered(hub: Hub, agent: Agent):
    conversation_id, ours = await _replied(hub, agent)
    raw = dsn(
        ours.message_id,
        [
            ("alice@customer.test", "relayed", "2.0.0", "250 relayed to a non-DSN MTA"),
            ("team@customer.test", "expanded", "2.0.0", "250 expanded to 3 members"),
        ],
    )
    await _deliver(hub, raw)
    reply = await _reply_now(hub, conversation_id, ours.seq)
    assert reply.state is not OutboxState.FAILED and reply.delivery == "delivered"


async def test_one_failed_recipient_among_several_fails_the_reply(hub: Hub, agent: Agent):
    conversation_id, ours = await _replied(hub, agent)
    raw = dsn(
        ours.message_id,
        [
            ("bob@customer.test", "delivered", "2.0.0", "250 2.0.0 Ok"),
            ("carol@customer.test", "delayed", "4.4.7", "451 4.4.7 try later"),
            ("alice@customer.test", "failed", "5.1.1", "550 5.1.1 no such user"),
        ],
    )
    await _deliver(hub, raw)
    reply = await _reply_now(hub, conversation_id, ours.seq)
    assert reply.state is OutboxState.FAILED
    assert reply.error is not None and "5.1.1" in reply.error
    messages = await hub.conversations.messages(conversation_id)
    assert "alice@customer.test" in messages[-1].text and "failed" in messages[-1].text


# ---- bounces of mail the hub never sent ------------------------------------------------


async def _conversation_count(hub: Hub) -> int:
    async with hub.db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(conversations))


async def test_a_bounce_of_unknown_mail_is_logged_not_a_ticket(hub: Hub):
    await make_email_inbox(hub, auto_ack=True)
    raw = dsn(
        "forged-123@elsewhere.test",
        [("victim@customer.test", "failed", "5.1.1", "550 5.1.1 no such user")],
        subject="Undelivered Mail Returned to Sender",
    )
    assert await _deliver(hub, raw) == "unmatched"
    assert await _deliver(hub, raw) == "duplicate"  # an SMTP retry, or IMAP and SMTP
    assert await _conversation_count(hub) == 0
    [logged] = await hub.bounce_log.latest()
    assert logged.original_message_id == "forged-123@elsewhere.test"
    assert logged.recipient == "victim@customer.test"
    assert (logged.action, logged.status) == ("failed", "5.1.1")
    assert logged.subject == "Undelivered Mail Returned to Sender"
    assert logged.sender == "mailer-daemon@mx.shop.test"


async def test_admins_read_the_unmatched_bounces_in_the_console(
    hub: Hub, as_admin: Console, as_agent: Console
):
    await make_email_inbox(hub)
    raw = dsn(
        "forged-456@elsewhere.test",
        [("victim@customer.test", "failed", "5.7.1", "550 5.7.1 <b>rejected</b> as spam")],
    )
    await _deliver(hub, raw)
    inboxes_page = await as_admin.http.get("/console/email-inboxes")
    assert 'href="/console/bounces"' in inboxes_page.text
    page = await as_admin.http.get("/console/bounces")
    assert page.status_code == 200
    assert "forged-456@elsewhere.test" in page.text and "5.7.1" in page.text
    assert "<b>rejected</b>" not in page.text  # the remote server's words are escaped
    refused = await as_agent.http.get("/console/bounces")
    assert refused.status_code == 403
    assert "forged-456" not in refused.text


# ---- recognising bounces in the wild -------------------------------------------------


def _prose(sender: str, subject: str, body: str, *, headers: str = "") -> bytes:
    """A mailer's plain-text notice (no report), the subject encoded as servers do."""
    return (
        f"Return-Path: <>\nFrom: {sender}\nTo: {SUPPORT}\n"
        f"Subject: {Header(subject, 'utf-8').encode()}\n"
        "Message-ID: <notice-1@mx.customer.test>\nMIME-Version: 1.0\n"
        f"{headers}Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{body}"
    ).encode()


_RETURNED = """
------ This is a copy of the message's headers. ------

From: Shop Support <support@shop.test>
To: alice@customer.test
Subject: Re: Where is my order?
Message-ID: <out-7@shop.test>
"""


@pytest.mark.parametrize(
    ("sender", "subject", "words"),
    [
        ("MAILER-DAEMON@mx.mail.ru", "Недоставленное сообщение", "Сообщение не доставлено."),
        ("postmaster@mx.ocn.ne.jp", "配信不能: Re: Where is my order?", "配信できませんでした。"),
        ("postmaster@orange.fr", "Non remis : Re: Where is my order?", "Échec de la remise."),
        ("postmaster@telefonica.es", "No se puede entregar: Re: pedido", "No se pudo entregar."),
        ("postmaster@uol.com.br", "Mensagem não entregue: Re: pedido", "Não foi entregue."),
        ("postmaster@163.com", "系统退信", "很抱歉您的邮件无法投递。"),
        (
            "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            "Delivery Status Notification",
            "Delivery to the following recipient failed.",
        ),
    ],
)
def test_bounces_with_subjects_in_other_languages(sender: str, subject: str, words: str):
    body = (
        f"{words}\n\n<alice@customer.test>: host mx.customer.test said: 550 5.1.1 "
        "<alice@customer.test>: user unknown\n" + _RETURNED
    )
    email = parse_email(_prose(sender, subject, body))
    assert email.bounce is not None, subject
    assert email.bounce.action == "failed"
    assert email.bounce.recipient == "alice@customer.test"
    assert email.bounce.status == "5.1.1"
    assert email.bounce.original_message_id == "out-7@shop.test"


def test_exchange_non_delivery_report_from_an_unusual_sender():
    raw = _prose(
        "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.test>",
        "Undeliverable: Re: Where is my order?",
        "Delivery has failed to these recipients or groups:\n\nalice@customer.test\n"
        "The email address you entered couldn't be found.\n\n"
        "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found'\n"
        + _RETURNED,
        headers="Auto-Submitted: auto-replied\n",
    )
    email = parse_email(raw)
    assert email.bounce is not None
    assert (email.bounce.recipient, email.bounce.status) == ("alice@customer.test", "5.1.10")


def test_qmail_bounce_is_read_by_the_mailman_detectors():
    raw = _prose(
        "MAILER-DAEMON@mx.customer.test",
        "Message status",  # no failure word: only the detectors know it is one
        "Hi. This is the qmail-send program at mx.customer.test.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<bob@customer.test>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n" + _RETURNED,
    )
    email = parse_email(raw)
    assert email.bounce is not None and email.bounce.recipient == "bob@customer.test"


def test_a_report_without_report_type_is_a_bounce():
    raw = dsn(
        "out-9@shop.test",
        [("alice@customer.test", "failed", "5.2.2", "552 5.2.2 mailbox full")],
        report_type="",
    )
    email = parse_email(raw)
    assert email.bounce is not None
    assert (email.bounce.recipient, email.bounce.status) == ("alice@customer.test", "5.2.2")
    assert email.bounce.original_message_id == "out-9@shop.test"


def test_a_delay_notice_in_prose_is_delayed():
    raw = _prose(
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Delay)",
        "Delivery to the following recipient has been delayed:\n\n     alice@customer.test\n\n"
        "Message will be retried for 2 more day(s)\n\n"
        "The error that the other server returned was: 451 4.4.1 try again later\n" + _RETURNED,
    )
    email = parse_email(raw)
    assert email.bounce is not None and email.bounce.action == "delayed"


def test_a_customer_forwarding_a_bounce_opens_a_ticket():
    raw = (
        b"From: Alice <alice@customer.test>\nTo: support@shop.test\n"
        b"Subject: Fwd: Undelivered Mail Returned to Sender\nMessage-ID: <fw-1@customer.test>\n\n"
        b"My mail to you bounced, see below.\n\n> 550 5.1.1 user unknown\n"
    )
    assert parse_email(raw).bounce is None


def test_an_out_of_office_reply_is_no_bounce():
    raw = _prose(
        "Bob <bob@customer.test>",
        "Automatic reply: Undelivered parcel",
        "I am out of the office until Monday.\n",
        headers="Auto-Submitted: auto-replied\n",
    )
    assert parse_email(raw).bounce is None


async def test_a_localized_bounce_fails_the_reply_it_names(hub: Hub, agent: Agent):
    conversation_id, ours = await _replied(hub, agent)
    body = (
        "Ваше сообщение не может быть доставлено.\n\n"
        "<alice@customer.test>: 550 5.1.1 user unknown\n\n"
        f"Message-ID: <{ours.message_id}>\n"
    )
    raw = _prose("MAILER-DAEMON@mx.yandex.ru", "Недоставленное сообщение", body)
    assert await _deliver(hub, raw) == "bounce"
    reply = await _reply_now(hub, conversation_id, ours.seq)
    assert reply.state is OutboxState.FAILED
