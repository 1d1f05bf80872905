"""Files posted as mail that are no mail (an Outlook .msg, a PDF, a zip, a PNG,
NUL-heavy bytes), over SMTP, LMTP, IMAP (a real dovecot) and the HTTP intake:
each becomes an "unreadable message" ticket with the file attached as it
arrived, never binary shown as text."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa

from channels.email.imap_poller import ImapPoller
from hub.core import Hub
from hub.email.inboxes import EmailInboxConfig
from hub.settings import MailProtocol
from storage.tables import email_messages
from tests.conftest import LiveServer
from tests.email_helpers import SUPPORT, make_email_inbox
from tests.imap_server import Dovecot, dovecot_server
from tests.test_email_imap import imap_inbox
from tests.test_email_smtp import _transaction, lmtp, mail_server, send


def outlook_msg() -> bytes:
    """The start of an OLE2 compound file, as Outlook saves a .msg."""
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
    )
    sector = "__substg1.0_0037001F".encode("utf-16-le") + bytes(64)
    return header.ljust(512, b"\x00") + sector.ljust(512, b"\xff")


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def zip_file() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("order.txt", "Order 4711\n")
    return out.getvalue()


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def nul_heavy() -> bytes:
    """Text saved as UTF-16: half its bytes are NUL, and no header is readable."""
    return "From: alice@customer.test\r\nSubject: order\r\n\r\nWhere is it?\r\n".encode("utf-16-le")


FILES = {
    "msg": (outlook_msg, "message.msg", "application/vnd.ms-outlook", "Outlook .msg"),
    "pdf": (pdf, "message.pdf", "application/pdf", "PDF"),
    "zip": (zip_file, "message.zip", "application/zip", "zip"),
    "png": (png, "message.png", "image/png", "PNG"),
    "nul": (nul_heavy, "message.bin", "application/octet-stream", "binary data"),
}


async def the_ticket(hub: Hub) -> int:
    async with hub.db.read() as conn:
        query = sa.select(email_messages.c.conversation_id).where(
            email_messages.c.direction == "in"
        )
        [conversation_id] = (await conn.execute(query)).scalars().all()
    return int(conversation_id)


async def assert_kept_as_attachment(hub: Hub, conversation_id: int, kind: str, sent: bytes) -> None:
    _, filename, content_type, described = FILES[kind]
    [details] = (await hub.email.details(conversation_id)).values()
    assert details.parse_error is not None and described in details.parse_error
    [file] = details.attachments
    assert (file["filename"], file["content_type"]) == (filename, content_type)
    _, attachment = await hub.email.attachment(file["id"])
    _, raw = await hub.email.raw(details.id)
    assert attachment.data == raw
    # SMTP turns bare line ends into CRLF; the file's start arrives as it was.
    assert raw[:8] == sent[:8]
    [shown] = await hub.conversations.messages(conversation_id)
    assert "not a mail message but" in shown.text and described in shown.text
    assert "\x00" not in shown.text and "\ufffd" not in shown.text
    assert "IHDR" not in shown.text and "obj" not in shown.text and "order.txt" not in shown.text


@pytest.mark.parametrize("kind", sorted(FILES))
async def test_a_file_sent_over_smtp_is_an_unreadable_ticket_with_the_file_attached(hub: Hub, kind):
    await make_email_inbox(hub)
    data = FILES[kind][0]()
    async with mail_server(hub) as server:
        assert await send(server.port, data) == {}
    await assert_kept_as_attachment(hub, await the_ticket(hub), kind, data)


async def test_a_file_delivered_over_lmtp_is_an_unreadable_ticket_with_the_file_attached(hub: Hub):
    await make_email_inbox(hub)
    data = outlook_msg()
    async with mail_server(hub, protocol=MailProtocol.LMTP) as server:
        lines = await lmtp(server.port, _transaction(data, (SUPPORT,)), 1)
    assert lines[-1] == f"250 2.0.0 <{SUPPORT}> stored"
    await assert_kept_as_attachment(hub, await the_ticket(hub), "msg", data)


TRACE = (
    b"Return-Path: <alice@customer.test>\r\n"
    b"Delivered-To: support@shop.test\r\n"
    b"Received: from mx.customer.test (mx.customer.test [192.0.2.7])\r\n"
    b"\tby mx.shop.test with ESMTP id 4F2A; Fri, 4 Dec 2026 18:00:00 +0000\r\n"
)


@pytest.mark.parametrize("kind", ["msg", "pdf"])
async def test_a_file_relayed_with_trace_headers_in_front_is_still_the_file(hub: Hub, kind: str):
    """The mail server in front adds Return-Path/Received lines (and no blank line)
    before handing the file on over LMTP: the ticket holds the file without them."""
    await make_email_inbox(hub)
    data = FILES[kind][0]()
    async with mail_server(hub, protocol=MailProtocol.LMTP) as server:
        lines = await lmtp(server.port, _transaction(TRACE + data, (SUPPORT,)), 1)
    assert lines[-1] == f"250 2.0.0 <{SUPPORT}> stored"
    ticket = await the_ticket(hub)
    _, filename, content_type, described = FILES[kind]
    [details] = (await hub.email.details(ticket)).values()
    assert details.parse_error is not None and described in details.parse_error
    [file] = details.attachments
    assert (file["filename"], file["content_type"]) == (filename, content_type)
    _, raw = await hub.email.raw(details.id)
    _, attachment = await hub.email.attachment(file["id"])
    assert raw.startswith(TRACE + data[:8]) and attachment.data == raw[len(TRACE) :]
    [shown] = await hub.conversations.messages(ticket)
    assert "not a mail message but" in shown.text and "obj" not in shown.text


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


async def test_a_file_fetched_over_imap_is_an_unreadable_ticket_with_the_file_attached(
    hub: Hub, dovecot: Dovecot
):
    """IMAP literals hold no NULs (dovecot sends 0x80 instead): the file is
    fetched again as binary, so the ticket has it byte for byte."""
    inbox = await imap_inbox(hub, dovecot)
    data = outlook_msg()
    dovecot.append(data)
    assert await ImapPoller(hub, inbox.id).poll_once() == 1
    ticket = await the_ticket(hub)
    await assert_kept_as_attachment(hub, ticket, "msg", data)
    [details] = (await hub.email.details(ticket)).values()
    assert (await hub.email.raw(details.id))[1] == data


@pytest.fixture
async def intake_url(hub: Hub, live_server: LiveServer) -> str:
    _, token = await hub.email_inboxes.create(EmailInboxConfig(name="Support", address=SUPPORT))
    return f"{live_server.url}/email/inbound/{token}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@pytest.mark.parametrize("kind", ["msg", "nul"])
async def test_a_file_posted_to_the_http_intake_is_stored_byte_for_byte_as_an_attachment(
    hub: Hub, client: httpx.AsyncClient, intake_url: str, kind: str
):
    data = FILES[kind][0]()
    response = await client.post(
        intake_url, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text
    ticket = response.json()["ticket"]
    await assert_kept_as_attachment(hub, ticket, kind, data)
    [details] = (await hub.email.details(ticket)).values()
    assert (await hub.email.raw(details.id))[1] == data


async def test_mail_with_a_binary_attachment_is_still_read_as_mail(hub: Hub):
    """Only the message's own first bytes decide: a .msg attached to mail is an attachment."""
    from email.message import EmailMessage

    await make_email_inbox(hub)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@customer.test", SUPPORT, "the original"
    msg.set_content("Forwarding the original as a file.")
    msg.add_attachment(
        outlook_msg(), maintype="application", subtype="vnd.ms-outlook", filename="x.msg"
    )
    async with mail_server(hub) as server:
        assert await send(server.port, msg) == {}
    ticket = await the_ticket(hub)
    [details] = (await hub.email.details(ticket)).values()
    assert details.parse_error is None and details.subject == "the original"
    assert [f["filename"] for f in details.attachments] == ["x.msg"]
