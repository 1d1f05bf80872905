"""Inbound mail over SMTP or LMTP (aiosmtpd), served in the running event loop.

The edge answers in SMTP's words; the hub decides and stores:

- connect: more than `connections_per_ip` open from one address → 421
  (SMTP mode only; behind an MTA in LMTP mode the one client is the MTA);
- MAIL: more than `messages_per_minute` from one address → 451, shared by all
  nodes through `hub.limits` (SMTP mode only); a declared SIZE over the limit
  → 552 (aiosmtpd, which advertises SIZE in its EHLO answer);
- RCPT: an address no inbox owns (plus-addresses included) → 550 5.1.1; more
  than `MAX_RECIPIENTS` → 452;
- DATA: over the size limit → 552; a message too complex to read within the
  reader's limits (`channels.email.reader`) → 554 5.6.0, permanent; otherwise
  the message is read once and stored once per inbox among its recipients,
  and only when every store has returned is it answered `250 2.0.0 stored`.
  A failed store answers 451 so that the sender tries again; a retry is
  stored once (duplicates by Message-ID). In LMTP mode every accepted recipient gets its own answer.

STARTTLS is offered only when a certificate and key are configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, syntax
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from channels.email.intake import TooComplex, parse
from channels.email.smtp_data import read_body
from hub.core import Hub
from hub.email.inboxes import EmailInbox
from hub.email.models import Envelope, InboundEmail
from hub.errors import Unavailable
from hub.ratelimit import ConnectionCounter, Limiter
from hub.settings import MailProtocol, MailSettings, SettingsError

log = logging.getLogger(__name__)
_AIOSMTPD_LOG = logging.getLogger("mail.log")

# RFC 5321 asks servers to take at least 100; a support address never needs
# more than a handful, and 50 keeps one message from fanning out widely.
MAX_RECIPIENTS = 50
# RFC 5321 says 998 characters a line, but real senders (HTML on one line)
# exceed it and MTAs accept them; refuse only lines past this.
LINE_LENGTH_LIMIT = 1024 * 1024
# On shutdown, messages being stored get this long to finish (their senders
# would otherwise retry them, which is safe but slower).
SHUTDOWN_GRACE_SECONDS = 10.0

STORED = "250 2.0.0 stored"
TRY_AGAIN = "451 4.3.0 temporary failure, try again"
TOO_MANY_CONNECTIONS = "421 4.7.0 too many connections from your address, try again later"
TOO_MANY_MESSAGES = "451 4.7.1 too many messages from your address, try again later"
TOO_MANY_RECIPIENTS = f"452 4.5.3 too many recipients (at most {MAX_RECIPIENTS})"
# Permanent: the same bytes will never be read, so the sender should not retry.
NOT_READ = "554 5.6.0 message too complex to read, not accepted"


def _no_such_mailbox(address: str) -> str:
    return f"550 5.1.1 <{address}>: no such mailbox here"


def _client_ip(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class _HubEnvelope(SmtpEnvelope):
    """aiosmtpd's envelope, plus the inbox each accepted recipient belongs to."""

    def __init__(self) -> None:
        super().__init__()
        self.inboxes: dict[int, tuple[EmailInbox, list[str]]] = {}

    def accept(self, inbox: EmailInbox, address: str) -> None:
        self.inboxes.setdefault(inbox.id, (inbox, []))[1].append(address)


class IntakeHandler:
    """aiosmtpd hooks: each returns the protocol answer (see the module docstring)."""

    def __init__(self, hub: Hub, lmtp: bool, messages: Limiter | None) -> None:
        self._hub = hub
        self._lmtp = lmtp
        self._messages = messages
        self._storing = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Any,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # Senders do not log in here: never offer AUTH (aiosmtpd would after STARTTLS).
        session.host_name = hostname
        return [line for line in responses if not line.startswith("250-AUTH")]

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: SmtpEnvelope, address: str, options: list[str]
    ) -> str:
        if self._messages is not None and not await self._messages.allow(_client_ip(session)):
            return TOO_MANY_MESSAGES
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: _HubEnvelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        try:
            inbox = await self._hub.email_inboxes.by_address(address)
        except Exception:
            log.exception("mail: looking up recipient %s failed", address)
            return TRY_AGAIN
        if inbox is None or inbox.inbox.archived:  # an archived inbox takes no new mail
            log.info("mail: refused unknown recipient %s from %s", address, _client_ip(session))
            return _no_such_mailbox(address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.accept(inbox, address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: _HubEnvelope) -> str:
        self._storing += 1
        self._idle.clear()
        try:
            email = await parse(envelope.original_content or b"")
        except TooComplex as exc:
            log.info("mail: refused a message from %s: %s", _client_ip(session), exc)
            refusal = f"{NOT_READ}: {exc}"
            return self._answer(envelope, lambda _inbox_id: refusal)
        else:
            failed = await self._store(envelope, email)
        finally:
            self._storing -= 1
            if self._storing == 0:
                self._idle.set()
        return self._answer(envelope, lambda inbox_id: TRY_AGAIN if inbox_id in failed else STORED)

    def _answer(self, envelope: _HubEnvelope, answer: Callable[[int], str]) -> str:
        """The DATA answer; in LMTP mode one per accepted recipient, in RCPT
        order (RFC 2033 §4.2), naming the recipient."""
        if not self._lmtp:
            answers = {answer(inbox_id) for inbox_id in envelope.inboxes}
            # Any failed store makes the sender try again (a retry is stored once).
            return TRY_AGAIN if TRY_AGAIN in answers else next(iter(answers), STORED)
        lines = []
        for inbox_id, rcpt in _recipients(envelope):
            code, _, text = answer(inbox_id).partition(" ")
            lines.append(f"{code} {text.replace(' ', f' <{rcpt}> ', 1)}")
        return "\r\n".join(lines)

    async def _store(self, envelope: _HubEnvelope, email: InboundEmail) -> set[int]:
        """Store the message in each of its inboxes; the ids of those that failed."""
        # aiosmtpd hands the null return path `MAIL FROM:<>` over as "<>".
        mail_from = "" if envelope.mail_from in (None, "", "<>") else envelope.mail_from
        failed: set[int] = set()
        for inbox_id, (inbox, rcpts) in envelope.inboxes.items():
            try:
                await self._hub.email.ingest(
                    inbox, email, Envelope(recipients=tuple(rcpts), mail_from=mail_from)
                )
            except Exception:
                # Whatever went wrong (mostly: the database is unreachable), the
                # sender keeps the message and tries again; nothing is lost.
                log.exception("mail: storing %s for %s failed", email.message_id, inbox.address)
                failed.add(inbox_id)
        return failed

    async def idle(self) -> None:
        """Return once no message is being stored."""
        await self._idle.wait()


def _recipients(envelope: _HubEnvelope) -> list[tuple[int, str]]:
    by_address = {
        rcpt: inbox_id for inbox_id, (_, rcpts) in envelope.inboxes.items() for rcpt in rcpts
    }
    return [(by_address[rcpt], rcpt) for rcpt in envelope.rcpt_tos]


async def _data_command(session: Any, arg: str) -> None:
    """aiosmtpd's DATA command, with the body read by channels/email/smtp_data.py.

    aiosmtpd's private parts (_reader, _call_handler_hook, _set_post_data_state)
    are used as its own smtp_DATA uses them; the SMTP tests cover each answer."""
    if await session.check_helo_needed() or await session.check_auth_needed("DATA"):
        return
    if not session.envelope.rcpt_tos:
        await session.push("503 Error: need RCPT command")
        return
    if arg:
        await session.push("501 Syntax: DATA")
        return
    await session.push("354 End data with <CR><LF>.<CR><LF>")
    try:
        body = await read_body(session._reader, session.data_size_limit, session.line_length_limit)
    except asyncio.CancelledError:  # the connection went away during DATA
        session._writer.close()
        raise
    if body is None:
        return
    if body.refusal is not None:
        await session.push(body.refusal.value)
        session._set_post_data_state()
        return
    session.envelope.content = session.envelope.original_content = body.content
    status = await session._call_handler_hook("DATA")
    session._set_post_data_state()
    await session.push("250 OK" if status is MISSING else status)


class _Session:
    """What our SMTP and LMTP sessions add to aiosmtpd's: an envelope that
    remembers inboxes, and a ceiling on connections per client address."""

    line_length_limit = LINE_LENGTH_LIMIT
    connections: ConnectionCounter | None = None
    sessions: set[Any]

    def _create_envelope(self) -> _HubEnvelope:
        return _HubEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # type: ignore[attr-defined]
        super().connection_made(transport)  # type: ignore[misc]
        if not first:  # the same connection again, after STARTTLS
            return
        self._ip = _client_ip(self.session)  # type: ignore[attr-defined]
        self._admitted = self.connections is None or self.connections.acquire(self._ip)
        self.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        if getattr(self, "_admitted", False) and self.connections is not None:
            self.connections.release(self._ip)
            self._admitted = False
        self.sessions.discard(self)
        super().connection_lost(error)  # type: ignore[misc]

    async def _handle_client(self) -> None:
        if not self._admitted:
            log.info("mail: too many connections from %s", self._ip)
            await self.push(TOO_MANY_CONNECTIONS)  # type: ignore[attr-defined]
            self.transport.close()  # type: ignore[attr-defined]
            return
        await super()._handle_client()  # type: ignore[misc]

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        await _data_command(self, arg)

    def close(self) -> None:
        if self.transport is not None:  # type: ignore[attr-defined]
            self.transport.close()  # type: ignore[attr-defined]


class _SMTPSession(_Session, SMTP):
    pass


class _LMTPSession(_Session, LMTP):
    _in_data = False

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False

    async def push(self, status: str | bytes) -> None:
        # aiosmtpd refuses an oversize or overlong DATA with one line; LMTP
        # owes one per accepted recipient, or the client waits for the rest.
        text = status.decode() if isinstance(status, bytes) else status
        if self._in_data and text[:3] in {"500", "552"} and self.envelope is not None:
            text = "\r\n".join([text] * max(1, len(self.envelope.rcpt_tos)))
        await super().push(text)


def tls_context(mail: MailSettings) -> ssl.SSLContext | None:
    """The server's TLS context for STARTTLS, or None when no certificate is set."""
    if mail.tls_cert is None or mail.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(mail.tls_cert, mail.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"HUB_MAIL_TLS_CERT / HUB_MAIL_TLS_KEY ({mail.tls_cert}, {mail.tls_key}) "
            f"could not be loaded as a PEM certificate and its key: {exc}"
        ) from None
    return context


@dataclass
class MailListener:
    """A listening mail server; `close` stops it after in-flight messages are stored."""

    server: asyncio.base_events.Server
    handler: IntakeHandler
    sessions: set[Any]
    host: str
    port: int
    protocol: MailProtocol
    tls: bool

    def describe(self) -> str:
        tls = ", STARTTLS" if self.tls else ""
        return f"{self.protocol.value.upper()} on {self.host}:{self.port}{tls}"

    async def close(self) -> None:
        self.server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                await self.handler.idle()
        for session in list(self.sessions):
            session.close()
        await self.server.wait_closed()


async def start_mail_server(
    hub: Hub, mail: MailSettings | None = None, *, host: str | None = None, port: int | None = None
) -> MailListener:
    """Listen for mail in the running loop (port 0: the system picks a free port)."""
    mail = mail or hub.settings.mail
    if _AIOSMTPD_LOG.level == logging.NOTSET:
        # aiosmtpd logs every command line at INFO; keep its warnings only.
        _AIOSMTPD_LOG.setLevel(logging.WARNING)
    host = mail.host if host is None else host
    port = mail.port if port is None else port
    lmtp = mail.protocol is MailProtocol.LMTP
    context = tls_context(mail)
    limited = not lmtp
    messages = (
        hub.limits.bucket("mail-messages", mail.messages_per_minute / 60, mail.messages_per_minute)
        if limited and mail.messages_per_minute
        else None
    )
    handler = IntakeHandler(hub, lmtp, messages)
    session_class = _LMTPSession if lmtp else _SMTPSession
    sessions: set[Any] = set()
    connections = ConnectionCounter(mail.connections_per_ip) if limited else None
    # Looked up once: aiosmtpd would ask the resolver on every connection.
    hostname = mail.hostname or socket.getfqdn()

    def new_session() -> SMTP:
        session = session_class(
            handler,
            data_size_limit=mail.max_bytes,
            # Internationalized addresses (RFC 6531); the parser reads UTF-8 headers.
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="contact hub",
            tls_context=context,
            loop=asyncio.get_running_loop(),
        )
        session.connections = connections
        session.sessions = sessions
        return session

    try:
        server = await asyncio.get_running_loop().create_server(new_session, host, port)
    except OSError as exc:
        raise Unavailable(
            f"Cannot listen for mail on {host}:{port} (HUB_MAIL_HOST, HUB_MAIL_PORT): "
            f"{exc.strerror or exc}"
        ) from exc
    bound = server.sockets[0].getsockname()[1]
    return MailListener(server, handler, sessions, host, bound, mail.protocol, context is not None)
