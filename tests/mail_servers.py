"""Real mail servers on loopback for tests: an aiosmtpd sink that records what it
receives and answers what the test tells it to (250, 451, 550 …)."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.smtp import SMTP

from bench.ports import release_port, reserve_port


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default_policy)  # type: ignore[return-value]


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    # What DATA is answered with; "250 OK" records the message.
    answer: str = "250 OK"
    arrived: asyncio.Event | None = None

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        if self.answer.startswith("250"):
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            if self.arrived is not None:
                self.arrived.set()
        return self.answer


@dataclass
class Sink:
    """The sink runs in the test's own event loop (no thread), on a reserved port:
    after stop() nothing else may take the port before restart() listens again."""

    host: str
    port: int
    handler: SinkHandler
    server: asyncio.base_events.Server | None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    async def stop(self) -> None:
        """Stop listening, like a mail server going down."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def restart(self) -> None:
        """Listen again on the same port, like the mail server coming back."""
        self.server = await _listen(self.handler, self.host, self.port)

    async def next_message(self) -> Received:
        """Wait (callers bound it with asyncio.timeout) for the next message not yet taken."""
        while len(self.handler.received) <= self._taken:
            self.handler.arrived = asyncio.Event()
            if len(self.handler.received) > self._taken:
                break
            await self.handler.arrived.wait()
        self._taken += 1
        return self.handler.received[self._taken - 1]

    _taken: int = 0


async def _listen(handler: SinkHandler, host: str, port: int) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(handler), host, port)


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[Sink]:
    handler = SinkHandler()
    port = reserve_port()
    try:
        sink = Sink("127.0.0.1", port, handler, await _listen(handler, "127.0.0.1", port))
        try:
            yield sink
        finally:
            await sink.stop()
    finally:
        release_port(port)
