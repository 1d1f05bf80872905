"""A minimal SMTP client for load generators that send the same messages many
times: each message is encoded for DATA once (line endings, dot-stuffing),
so sending it costs the generator one write.

aiosmtplib re-encodes every message with two regular expressions, 3 to 5 ms of
the generator's event loop for a message of 16,000 lines: in the stall
benchmark that was the generator delaying the very pongs it timed.
"""

from __future__ import annotations

import asyncio
import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


class SmtpReply(Exception):
    """A reply outside 2xx/3xx; `code` says which."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code


def encode_for_data(message: bytes) -> bytes:
    """`message` as a DATA body: CRLF line ends, leading dots doubled, the end line."""
    lines = _LINE_END.sub(b"\r\n", message)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    stuffed = lines.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


class RawSmtp:
    """One connection; `send(sender, recipient, encoded)` per message."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, helo: str = "generator.test") -> RawSmtp:
        reader, writer = await asyncio.open_connection(host, port)
        smtp = cls(reader, writer)
        await smtp._reply()
        await smtp._command(f"EHLO {helo}")
        return smtp

    async def _reply(self) -> tuple[int, str]:
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line[3:4] != b"-":
                code, text = int(line[:3]), line[4:].decode(errors="replace").strip()
                if code >= 400:
                    raise SmtpReply(code, text)
                return code, text

    async def _command(self, line: str) -> tuple[int, str]:
        self._writer.write(line.encode() + b"\r\n")
        return await self._reply()

    async def send(self, sender: str, recipient: str, encoded: bytes) -> None:
        """One transaction; `SmtpReply` if the server refuses it (then RSET)."""
        try:
            await self._command(f"MAIL FROM:<{sender}>")
            await self._command(f"RCPT TO:<{recipient}>")
            await self._command("DATA")
            self._writer.write(encoded)
            await self._reply()
        except SmtpReply:
            await self._command("RSET")
            raise

    async def quit(self) -> None:
        try:
            await self._command("QUIT")
        except (ConnectionError, SmtpReply):
            pass
        self._writer.close()
