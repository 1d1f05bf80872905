"""The DATA body as the SMTP server reads it (channels/email/smtp_data.py): whole
however the socket splits it, dot-transparency undone, what follows the end
left for the next command, and refusals that leave the session usable."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from hub.core import Hub
from storage.tables import email_messages
from tests.email_helpers import SUPPORT, make_email_inbox
from tests.test_email_smtp import ALICE, mail_server


class Client:
    """A hand-driven SMTP client: writes exactly the bytes given, in the pieces given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        await client.reply()  # the greeting
        return client

    async def reply(self) -> str:
        """One (possibly multi-line) reply; its last line."""
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 10)).decode()
            if line[3:4] != "-":
                return line.rstrip("\r\n")

    async def write(self, *pieces: bytes) -> None:
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()

    async def command(self, line: str) -> str:
        await self.write(line.encode() + b"\r\n")
        return await self.reply()

    async def start_data(self) -> None:
        assert (await self.command("EHLO mx.customer.test")).startswith("250")
        assert (await self.command(f"MAIL FROM:<{ALICE}>")).startswith("250")
        assert (await self.command(f"RCPT TO:<{SUPPORT}>")).startswith("250")
        assert (await self.command("DATA")).startswith("354")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def mail(subject: str, body_lines: list[str]) -> bytes:
    head = f"From: <{ALICE}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\r\n"
    return (head + "".join(line + "\r\n" for line in body_lines)).encode()


def stuffed(raw: bytes) -> bytes:
    """The body as a client sends it: lines that start with a dot get another."""
    return b"\r\n".join(
        b"." + line if line.startswith(b".") else line for line in raw.split(b"\r\n")
    )


async def texts(hub: Hub) -> list[str]:
    """The text of every incoming message stored, in arrival order."""
    async with hub.db.read() as conn:
        query = sa.select(email_messages.c.conversation_id).where(
            email_messages.c.direction == "in"
        )
        tickets = (await conn.execute(query.order_by(email_messages.c.id))).scalars().all()
    found = []
    for conversation_id in dict.fromkeys(tickets):
        found += [m.text for m in await hub.conversations.messages(conversation_id)]
    return found


async def test_a_body_split_anywhere_is_read_whole_with_its_dots_restored(hub: Hub):
    await make_email_inbox(hub)
    raw = mail("Dots", ["first line", ".a line that starts with a dot", "..two dots", "last."])
    wire = stuffed(raw) + b".\r\n"
    async with mail_server(hub) as server:
        client = await Client.open(server.port)
        try:
            await client.start_data()
            # One byte at a time: the end-of-data line arrives split over three writes.
            await client.write(*(wire[i : i + 1] for i in range(len(wire))))
            assert (await client.reply()).startswith("250")
        finally:
            await client.close()
    [text] = await texts(hub)
    assert text.splitlines() == [
        "first line",
        ".a line that starts with a dot",
        "..two dots",
        "last.",
    ]


async def test_commands_sent_right_after_the_end_of_data_are_answered(hub: Hub):
    await make_email_inbox(hub)
    first = stuffed(mail("One", ["the first message"])) + b".\r\n"
    async with mail_server(hub) as server:
        client = await Client.open(server.port)
        try:
            await client.start_data()
            # The end of DATA and the next commands in one packet, as a pipelining MTA sends.
            await client.write(first + f"RSET\r\nMAIL FROM:<{ALICE}>\r\n".encode())
            assert (await client.reply()).startswith("250")  # stored
            assert (await client.reply()).startswith("250")  # RSET
            assert (await client.reply()).startswith("250")  # MAIL
            assert (await client.command(f"RCPT TO:<{SUPPORT}>")).startswith("250")
            assert (await client.command("DATA")).startswith("354")
            await client.write(stuffed(mail("Two", ["the second message"])) + b".\r\n")
            assert (await client.reply()).startswith("250")
            assert (await client.command("QUIT")).startswith("221")
        finally:
            await client.close()
    assert sorted(await texts(hub)) == ["the first message", "the second message"]


async def test_an_overlong_line_is_refused_and_the_session_goes_on(hub: Hub):
    await make_email_inbox(hub)
    from channels.email.smtp_server import LINE_LENGTH_LIMIT

    long_line = "x" * LINE_LENGTH_LIMIT
    async with mail_server(hub, max_bytes=4 * LINE_LENGTH_LIMIT) as server:
        client = await Client.open(server.port)
        try:
            await client.start_data()
            await client.write(mail("Long", ["short", long_line, "short"]) + b".\r\n")
            assert (await client.reply()).startswith("500")
            assert (await client.command(f"MAIL FROM:<{ALICE}>")).startswith("250")
            assert (await client.command(f"RCPT TO:<{SUPPORT}>")).startswith("250")
            assert (await client.command("DATA")).startswith("354")
            await client.write(mail("Fine", ["x" * (LINE_LENGTH_LIMIT - 3)]) + b".\r\n")
            assert (await client.reply()).startswith("250")
        finally:
            await client.close()
    [text] = await texts(hub)  # the second message: a line just within the limit
    assert text and set(text) == {"x"}
