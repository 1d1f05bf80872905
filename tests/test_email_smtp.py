"""The inbound SMTP/LMTP server, spoken to by Python's smtplib (and by hand for
LMTP) on loopback: what is refused where, and that 250 means stored."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import make_msgid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from channels.email.smtp_server import MAX_RECIPIENTS, MailListener, start_mail_server
from hub.core import Hub
from hub.email.models import OutboxState
from hub.models import Agent, Channel
from hub.settings import MailProtocol
from storage.tables import email_messages
from tests.email_helpers import SUPPORT, make_email_inbox, passing_auth

ALICE = "alice@customer.test"
SALES = "sales@shop.test"


@asynccontextmanager
async def mail_server(hub: Hub, **changes: object) -> AsyncIterator[MailListener]:
    mail = dataclasses.replace(hub.settings.mail, **changes)  # type: ignore[arg-type]
    listener = await start_mail_server(hub, mail, host="127.0.0.1", port=0)
    try:
        yield listener
    finally:
        await listener.close()


@pytest.fixture
async def smtp(hub: Hub) -> AsyncIterator[MailListener]:
    async with mail_server(hub) as listener:
        yield listener


def message(
    text: str = "Hello, my order has not arrived.",
    *,
    sender: str = ALICE,
    to: str = SUPPORT,
    subject: str = "Where is my order?",
    message_id: str | None = None,
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Alice Doe <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="customer.test")
    msg["Authentication-Results"] = passing_auth(sender)
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def _id(msg: EmailMessage) -> str:
    return str(msg["Message-ID"]).strip("<>")


async def send(
    port: int,
    msg: EmailMessage | bytes,
    mail_from: str = ALICE,
    rcpts: tuple[str, ...] = (SUPPORT,),
) -> dict[str, tuple[int, bytes]]:
    """smtplib's sendmail in a thread (the server runs in this loop); the refused recipients."""
    data = msg if isinstance(msg, bytes) else msg.as_bytes()

    def run() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            return client.sendmail(mail_from, list(rcpts), data)

    return await asyncio.to_thread(run)


async def in_thread(port: int, script: Callable[[smtplib.SMTP], object]) -> object:
    def run() -> object:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            return script(client)

    return await asyncio.to_thread(run)


async def stored(hub: Hub, message_id: str) -> list[tuple[int, int]]:
    """(email inbox id, conversation id) of every stored copy of an incoming message."""
    async with hub.db.read() as conn:
        rows = await conn.execute(
            sa.select(email_messages.c.email_inbox_id, email_messages.c.conversation_id)
            .where(email_messages.c.message_id == message_id)
            .where(email_messages.c.direction == "in")
            .order_by(email_messages.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def outgoing(hub: Hub, conversation_id: int):  # type: ignore[no-untyped-def]
    details = await hub.email.details(conversation_id)
    return [d for d in details.values() if d.direction.value == "out"]


async def ticket_of(hub: Hub, msg: EmailMessage) -> int:
    [(_, conversation_id)] = await stored(hub, _id(msg))
    return conversation_id


# ---- new tickets and threading ----------------------------------------------------


async def test_a_message_sent_over_smtp_opens_a_ticket(hub: Hub, smtp: MailListener):
    inbox = await make_email_inbox(hub)
    msg = message("My parcel is late.")
    assert await send(smtp.port, msg) == {}
    conversation = await hub.conversations.get(await ticket_of(hub, msg))
    assert conversation.inbox_id == inbox.id
    assert conversation.contact_email == ALICE
    [first] = await hub.conversations.messages(conversation.id)
    assert "My parcel is late." in first.text


async def test_a_large_message_is_stored_whole(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub)
    msg = message("Photos of the damage attached.")
    photo = bytes(range(256)) * 2_000
    msg.add_attachment(photo, maintype="image", subtype="jpeg", filename="damage.jpg")
    assert await send(smtp.port, msg) == {}
    [details] = (await hub.email.details(await ticket_of(hub, msg))).values()
    assert details.raw_size > len(photo)
    assert [a["filename"] for a in details.attachments] == ["damage.jpg"]
    assert details.attachments[0]["size"] == len(photo)


async def test_a_reply_to_our_reply_joins_the_ticket_by_in_reply_to(
    hub: Hub, smtp: MailListener, agent: Agent
):
    await make_email_inbox(hub)
    first = message()
    await send(smtp.port, first)
    ticket = await ticket_of(hub, first)
    await hub.conversations.reply(agent, ticket, "It ships tomorrow.")
    [ours] = await outgoing(hub, ticket)
    answer = message("Thanks!", subject="Re: something", In_Reply_To=f"<{ours.message_id}>")
    await send(smtp.port, answer)
    assert await ticket_of(hub, answer) == ticket


async def test_mail_to_the_tickets_reply_address_joins_it_by_the_envelope(
    hub: Hub, smtp: MailListener
):
    await make_email_inbox(hub)
    first = message()
    await send(smtp.port, first)
    ticket = await ticket_of(hub, first)
    thread = await hub.email.thread(ticket)
    # No threading headers, the plain address in To: only RCPT names the ticket.
    fresh = message("Written fresh", subject="hello")
    assert await send(smtp.port, fresh, rcpts=(thread["reply_address"],)) == {}
    assert await ticket_of(hub, fresh) == ticket


async def test_the_ticket_token_in_the_subject_joins_for_a_participant_only(
    hub: Hub, smtp: MailListener
):
    await make_email_inbox(hub)
    first = message()
    await send(smtp.port, first)
    ticket = await ticket_of(hub, first)
    again = message("again", subject=f"Re: order [#{ticket}]")
    stranger = message("hijack", sender="eve@evil.test", subject=f"Re: [#{ticket}]")
    await send(smtp.port, again)
    await send(smtp.port, stranger, mail_from="eve@evil.test")
    assert await ticket_of(hub, again) == ticket
    assert await ticket_of(hub, stranger) != ticket


async def test_an_internationalized_sender_is_taken_with_smtputf8(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub)
    msg = message("Grüße", sender="jörg@beispiel.test", subject="Lieferung")

    def utf8(client: smtplib.SMTP) -> dict:
        return client.sendmail(
            "jörg@beispiel.test",
            [SUPPORT],
            msg.as_bytes(policy=SMTPUTF8),  # raw UTF-8 headers, as RFC 6532 allows
            mail_options=["SMTPUTF8"],
        )

    assert await in_thread(smtp.port, utf8) == {}
    conversation = await hub.conversations.get(await ticket_of(hub, msg))
    assert conversation.contact_email == "jörg@beispiel.test"


# ---- refusals -------------------------------------------------------------------------


async def test_an_unknown_recipient_is_refused_at_rcpt(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub)
    msg = message(to="nobody@shop.test")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send(smtp.port, msg, rcpts=("nobody@shop.test",))
    code, text = refused.value.recipients["nobody@shop.test"]
    assert code == 550
    assert text == b"5.1.1 <nobody@shop.test>: no such mailbox here"
    assert await stored(hub, _id(msg)) == []


async def test_a_message_for_a_known_and_an_unknown_recipient_is_stored_for_the_known(
    hub: Hub, smtp: MailListener
):
    inbox = await make_email_inbox(hub)
    msg = message()
    refused = await send(smtp.port, msg, rcpts=("nobody@shop.test", SUPPORT))
    assert refused == {"nobody@shop.test": (550, b"5.1.1 <nobody@shop.test>: no such mailbox here")}
    assert [i for i, _ in await stored(hub, _id(msg))] == [inbox.id]


async def test_one_message_to_two_inboxes_is_stored_in_each(hub: Hub, smtp: MailListener):
    support = await make_email_inbox(hub)
    sales = await make_email_inbox(hub, address=SALES, name="Sales")
    msg = message(to=f"{SUPPORT}, {SALES}")
    assert await send(smtp.port, msg, rcpts=(SUPPORT, SALES, "support+x@shop.test")) == {}
    assert sorted(i for i, _ in await stored(hub, _id(msg))) == [support.id, sales.id]


async def test_too_many_recipients_are_refused_with_452(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub)
    rcpts = tuple(f"support+r{n}@shop.test" for n in range(MAX_RECIPIENTS + 1))
    msg = message()
    refused = await send(smtp.port, msg, rcpts=rcpts)
    assert list(refused) == [rcpts[-1]]
    assert refused[rcpts[-1]][0] == 452
    assert len(await stored(hub, _id(msg))) == 1


async def test_size_is_advertised_and_oversize_refused_with_552(hub: Hub):
    await make_email_inbox(hub)
    limit = 64 * 1024
    big = message(("y" * 76 + "\n") * 1000)
    async with mail_server(hub, max_bytes=limit) as server:

        def declared(client: smtplib.SMTP) -> tuple[str, object]:
            client.ehlo()
            size = client.esmtp_features["size"]
            try:  # smtplib declares SIZE=… in MAIL FROM when the server offers it
                client.sendmail(ALICE, [SUPPORT], big.as_bytes())
            except smtplib.SMTPSenderRefused as exc:
                return size, exc.smtp_code
            return size, None

        def undeclared(client: smtplib.SMTP) -> tuple[int, bytes]:
            client.ehlo()
            client.mail(ALICE)
            client.rcpt(SUPPORT)
            return client.data(big.as_bytes())

        assert await in_thread(server.port, declared) == (str(limit), 552)
        code, _text = await in_thread(server.port, undeclared)  # type: ignore[misc]
        assert code == 552
        # The session goes on: a message within the limit is taken afterwards.
        small = message()
        assert await send(server.port, small) == {}
    assert await stored(hub, _id(big)) == []
    assert len(await stored(hub, _id(small))) == 1


async def test_too_many_connections_from_one_address_get_421(hub: Hub):
    async with mail_server(hub, connections_per_ip=1) as server:
        first = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", server.port, timeout=10)
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", server.port, timeout=10)
            assert refused.value.smtp_code == 421
        finally:
            await asyncio.to_thread(first.quit)
        # The slot is free again once the first connection has gone.
        await make_email_inbox(hub)
        assert await send(server.port, message()) == {}


async def test_too_many_messages_a_minute_from_one_address_get_451(hub: Hub):
    await make_email_inbox(hub)
    async with mail_server(hub, messages_per_minute=2) as server:
        await send(server.port, message())
        await send(server.port, message())
        late = message()
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await send(server.port, late)
        assert refused.value.smtp_code == 451
    assert await stored(hub, _id(late)) == []


# ---- duplicates, loops, bounces ---------------------------------------------------------


async def test_the_same_message_id_sent_twice_is_stored_once(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub)
    msg = message(message_id="twice@customer.test")
    assert await send(smtp.port, msg) == {}
    assert await send(smtp.port, msg) == {}  # accepted again: the sender must not retry
    [(_, ticket)] = await stored(hub, "twice@customer.test")
    assert len(await hub.conversations.messages(ticket)) == 1


async def test_a_person_gets_an_acknowledgement_and_an_auto_reply_none(
    hub: Hub, smtp: MailListener
):
    await make_email_inbox(hub, auto_ack=True)
    person = message()
    robot = message("I am out of the office", sender="bob@customer.test", subject="Away")
    robot["Auto-Submitted"] = "auto-replied"
    await send(smtp.port, person)
    await send(smtp.port, robot, mail_from="bob@customer.test")
    [ack] = await outgoing(hub, await ticket_of(hub, person))
    assert ack.automatic and ack.to == (ALICE,) and ack.state is OutboxState.QUEUED
    assert await outgoing(hub, await ticket_of(hub, robot)) == []


async def test_a_null_return_path_is_taken_and_never_acknowledged(hub: Hub, smtp: MailListener):
    await make_email_inbox(hub, auto_ack=True)
    msg = message("System notice", sender="alerts@vendor.test")
    assert await send(smtp.port, msg, mail_from="") == {}  # MAIL FROM:<>
    assert await outgoing(hub, await ticket_of(hub, msg)) == []


def _bounce(original_id: str, rcpt: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{make_msgid(domain='mx.customer.test').strip('<>')}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        f"I could not deliver your message to <{rcpt}>.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_id}>\r\nFrom: {SUPPORT}\r\nTo: {rcpt}\r\n"
        "Subject: Re: Where is my order?\r\n"
        "\r\n--B--\r\n"
    ).encode()


async def test_a_bounce_of_our_reply_is_attached_to_its_ticket_and_fails_it(
    hub: Hub, smtp: MailListener, agent: Agent
):
    await make_email_inbox(hub)
    first = message()
    await send(smtp.port, first)
    ticket = await ticket_of(hub, first)
    await hub.conversations.reply(agent, ticket, "It ships tomorrow.")
    [ours] = await outgoing(hub, ticket)
    assert await send(smtp.port, _bounce(ours.message_id, ALICE), mail_from="") == {}
    [ours] = await outgoing(hub, ticket)
    assert ours.state is OutboxState.FAILED
    assert "bounced" in (ours.error or "")
    async with hub.db.read() as conn:
        tickets = set((await conn.scalars(sa.select(email_messages.c.conversation_id))).all())
    assert tickets == {ticket}  # no new ticket for the bounce


# ---- failures: 451, and the retry stores once ------------------------------------------


async def test_a_failed_store_answers_451_and_the_retry_is_stored_once(
    hub: Hub, smtp: MailListener, monkeypatch: pytest.MonkeyPatch
):
    support = await make_email_inbox(hub)
    sales = await make_email_inbox(hub, address=SALES, name="Sales")
    real_ingest = hub.email.ingest

    async def sales_database_down(inbox, email, envelope):  # type: ignore[no-untyped-def]
        if inbox.id == sales.id:  # the first inbox is stored, the second fails
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return await real_ingest(inbox, email, envelope)

    monkeypatch.setattr(hub.email, "ingest", sales_database_down)
    msg = message(to=f"{SUPPORT}, {SALES}")
    with pytest.raises(smtplib.SMTPDataError) as failed:
        await send(smtp.port, msg, rcpts=(SUPPORT, SALES))
    assert failed.value.smtp_code == 451
    assert failed.value.smtp_error == b"4.3.0 temporary failure, try again"

    monkeypatch.setattr(hub.email, "ingest", real_ingest)  # the database is back
    assert await send(smtp.port, msg, rcpts=(SUPPORT, SALES)) == {}
    assert sorted(i for i, _ in await stored(hub, _id(msg))) == [support.id, sales.id]


async def test_an_unreachable_store_at_rcpt_answers_451(
    hub: Hub, smtp: MailListener, monkeypatch: pytest.MonkeyPatch
):
    async def down(address: str) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(hub.email_inboxes, "by_address", down)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send(smtp.port, message())
    assert refused.value.recipients[SUPPORT][0] == 451


async def test_closing_the_server_lets_a_message_being_stored_finish(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
):
    await make_email_inbox(hub)
    real_ingest = hub.email.ingest
    storing, go_on = asyncio.Event(), asyncio.Event()

    async def slow(inbox, email, envelope):  # type: ignore[no-untyped-def]
        storing.set()
        await go_on.wait()
        return await real_ingest(inbox, email, envelope)

    monkeypatch.setattr(hub.email, "ingest", slow)
    msg = message()
    listener = await start_mail_server(hub, host="127.0.0.1", port=0)
    sending = asyncio.create_task(send(listener.port, msg))
    await storing.wait()
    closing = asyncio.create_task(listener.close())
    await asyncio.sleep(0)  # let close() stop listening and start waiting
    assert not closing.done()  # it waits for the message being stored
    with pytest.raises(ConnectionRefusedError):  # no new connections meanwhile
        await asyncio.open_connection("127.0.0.1", listener.port)
    go_on.set()
    assert await sending == {}  # the sender got its 250
    await closing
    assert len(await stored(hub, _id(msg))) == 1


# ---- LMTP ----------------------------------------------------------------------------------


async def lmtp(port: int, commands: list[bytes], replies_after_data: int) -> list[str]:
    """Speak LMTP by hand (smtplib.LMTP reads one answer after DATA); every reply line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines: list[str] = []

    async def reply() -> None:
        while True:
            line = (await reader.readline()).decode().rstrip("\r\n")
            lines.append(line)
            if line[3:4] != "-":
                return

    try:
        await reply()  # greeting
        for command in commands:
            writer.write(command)
            await writer.drain()
            await reply()
            if command.endswith(b"\r\n.\r\n"):
                for _ in range(replies_after_data - 1):
                    await reply()
        return lines
    finally:
        writer.close()
        await writer.wait_closed()


def _transaction(msg: bytes, rcpts: tuple[str, ...]) -> list[bytes]:
    return [
        b"LHLO mx.shop.test\r\n",
        f"MAIL FROM:<{ALICE}>\r\n".encode(),
        *(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts),
        b"DATA\r\n",
        msg.replace(b"\n.", b"\n..") + b"\r\n.\r\n",
    ]


async def test_lmtp_answers_each_recipient_after_data(hub: Hub, monkeypatch: pytest.MonkeyPatch):
    support = await make_email_inbox(hub)
    sales = await make_email_inbox(hub, address=SALES, name="Sales")
    real_ingest = hub.email.ingest

    async def sales_fails(inbox, email, envelope):  # type: ignore[no-untyped-def]
        if inbox.id == sales.id:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return await real_ingest(inbox, email, envelope)

    monkeypatch.setattr(hub.email, "ingest", sales_fails)
    msg = message(to=f"{SUPPORT}, {SALES}")
    async with mail_server(hub, protocol=MailProtocol.LMTP) as server:
        lines = await lmtp(
            server.port, _transaction(msg.as_bytes(), (SUPPORT, "nobody@shop.test", SALES)), 2
        )
    assert lines[-5:] == [
        "550 5.1.1 <nobody@shop.test>: no such mailbox here",
        "250 2.1.5 OK",
        "354 End data with <CR><LF>.<CR><LF>",
        f"250 2.0.0 <{SUPPORT}> stored",
        f"451 4.3.0 <{SALES}> temporary failure, try again",
    ]
    assert [i for i, _ in await stored(hub, _id(msg))] == [support.id]


async def test_lmtp_refuses_helo_and_an_oversize_message_once_per_recipient(hub: Hub):
    await make_email_inbox(hub)
    big = ("z" * 76 + "\r\n").encode() * 1000
    async with mail_server(hub, protocol=MailProtocol.LMTP, max_bytes=64 * 1024) as server:
        helo = await lmtp(server.port, [b"EHLO mx.shop.test\r\n"], 1)
        lines = await lmtp(server.port, _transaction(big, (SUPPORT, "support+a@shop.test")), 2)
    assert helo[-1].startswith("500")
    assert "250-SIZE 65536" in lines
    assert [line[:3] for line in lines[-2:]] == ["552", "552"]


# ---- STARTTLS --------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.shop.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_starttls_is_offered_only_with_a_certificate(hub: Hub, smtp: MailListener):
    def features(client: smtplib.SMTP) -> tuple[bool, bool, bool]:
        client.ehlo()
        return client.has_extn("starttls"), client.has_extn("auth"), client.has_extn("smtputf8")

    assert await in_thread(smtp.port, features) == (False, False, True)
    assert not smtp.tls


async def test_mail_over_starttls_is_stored(hub: Hub, tmp_path: Path):
    await make_email_inbox(hub)
    cert, key = _self_signed(tmp_path)
    msg = message("Sent encrypted")
    async with mail_server(hub, tls_cert=cert, tls_key=key) as server:
        assert server.tls

        def encrypted(client: smtplib.SMTP) -> str | None:
            client.ehlo()
            assert client.has_extn("starttls")
            context = ssl.create_default_context(cafile=str(cert))
            context.check_hostname = False  # the throw-away name is not 127.0.0.1
            client.starttls(context=context)
            client.ehlo()
            assert not client.has_extn("auth")  # nobody logs in to send us mail
            version = client.sock.version()  # type: ignore[union-attr]
            client.sendmail(ALICE, [SUPPORT], msg.as_bytes())
            return version

        version = await in_thread(server.port, encrypted)
    assert str(version).startswith("TLSv1.")
    assert len(await stored(hub, _id(msg))) == 1


async def test_a_certificate_that_does_not_load_stops_the_start_with_the_setting_named(
    hub: Hub, tmp_path: Path
):
    from hub.settings import SettingsError

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(SettingsError, match="HUB_MAIL_TLS_CERT"):
        async with mail_server(hub, tls_cert=junk, tls_key=junk):
            pass


# ---- settings ----------------------------------------------------------------------------


def test_mail_settings_default_to_smtp_on_loopback_2525(tmp_path: Path):
    from hub.settings import DEFAULT_MAIL_MAX_BYTES, Settings

    mail = Settings.load(environ={"HUB_DATA_DIR": str(tmp_path)}, env_file="/none").mail
    assert (mail.host, mail.port, mail.protocol) == ("127.0.0.1", 2525, MailProtocol.SMTP)
    assert mail.max_bytes == DEFAULT_MAIL_MAX_BYTES == 25 * 1024 * 1024
    assert mail.tls_cert is None and mail.tls_key is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"HUB_MAIL_PORT": "smtp"}, "HUB_MAIL_PORT must be a port number"),
        ({"HUB_MAIL_PROTOCOL": "imap"}, "HUB_MAIL_PROTOCOL must be smtp or lmtp"),
        ({"HUB_MAIL_MAX_BYTES": "25MB"}, "HUB_MAIL_MAX_BYTES must be a number of bytes"),
        ({"HUB_MAIL_MAX_BYTES": "100"}, "HUB_MAIL_MAX_BYTES must be a number of bytes"),
        ({"HUB_MAIL_TLS_CERT": "/etc/hostname"}, "HUB_MAIL_TLS_CERT and HUB_MAIL_TLS_KEY go"),
        (
            {"HUB_MAIL_TLS_CERT": "/nonexistent.pem", "HUB_MAIL_TLS_KEY": "/nonexistent.key"},
            "HUB_MAIL_TLS_CERT must be a readable PEM file",
        ),
        ({"HUB_MAIL_MESSAGES_PER_MINUTE": "-1"}, "HUB_MAIL_MESSAGES_PER_MINUTE must be"),
        ({"HUB_MAIL_CONNECTIONS_PER_IP": "0"}, "HUB_MAIL_CONNECTIONS_PER_IP must be"),
        ({"HUB_MAIL_HOSTNAME": "mx example"}, "HUB_MAIL_HOSTNAME must be a host name"),
    ],
)
def test_bad_mail_settings_name_the_variable(tmp_path: Path, env: dict[str, str], words: str):
    from hub.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=words):
        Settings.load(environ={"HUB_DATA_DIR": str(tmp_path), **env}, env_file="/none")


async def test_an_archived_inbox_refuses_mail_at_rcpt_like_an_unknown_one(
    hub: Hub, smtp: MailListener
):
    inbox = await make_email_inbox(hub)
    await hub.inboxes.archive(inbox.id, Channel.EMAIL)
    msg = message()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send(smtp.port, msg)
    code, text = refused.value.recipients[SUPPORT]
    assert (code, text) == (550, f"5.1.1 <{SUPPORT}>: no such mailbox here".encode())
    assert await stored(hub, _id(msg)) == []
    assert await hub.email_inboxes.list() == [] and await hub.email_inboxes.polled() == []
