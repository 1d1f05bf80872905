"""The few IMAP commands the poller needs, on top of aioimaplib.

Everything that goes wrong is raised as an `ImapError`, with a sentence an
admin can act on (it is shown on the inbox in the console):

    ImapError
     ├── ImapUnavailable   connecting, TLS, timeouts, a dropped connection
     └── ImapRefused       the server answered NO/BAD (login, SELECT, …)

aioimaplib 2.0 has no STARTTLS of its own; `connect` upgrades the connection
itself and never falls back to plain text when the server does not offer it.

IMAP literals may not hold NUL bytes, so a server sends a file stored as mail
(an Outlook `.msg`) altered: dovecot turns each NUL into 0x80. Such a message
is fetched again as a binary literal (RFC 3516 BINARY) when the server offers
it. Only such a message: for a MIME message BINARY decodes the parts' base64
and quoted-printable, which would change the original kept.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioimaplib
from aioimaplib.aioimaplib import Command, Response

from hub.email.models import TlsMode

from .not_mail import not_mail

# aioimaplib's wait for one command's answer.
COMMAND_TIMEOUT = 30.0
# Servers drop a client idling 30 minutes (RFC 2177 asks clients to re-issue
# IDLE at least every 29); we stop a little earlier.
IDLE_SECONDS = 25 * 60

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(Exception):
    """Anything that stops a poll; the message is meant for the admin."""


class ImapUnavailable(ImapError):
    """The server could not be reached or the connection broke: try again later."""


class ImapRefused(ImapError):
    """The server said no (wrong password, no such folder, …)."""


@dataclass(frozen=True)
class Folder:
    uidvalidity: int


class ImapConnection:
    """One logged-in connection with one folder selected."""

    def __init__(self, client: aioimaplib.IMAP4, where: str) -> None:
        self._client = client
        self.where = where  # "host:port", for messages

    @property
    def supports_idle(self) -> bool:
        return self._client.has_capability("IDLE")

    async def select(self, folder: str) -> Folder:
        response = await self._run(self._client.select(_quote(folder)), f"SELECT {folder}")
        found = _UIDVALIDITY.search(b" ".join(_lines(response)))
        if found is None:
            raise ImapRefused(f"{self.where}: folder {folder!r} has no UIDVALIDITY")
        return Folder(int(found.group(1)))

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, ascending. `UID SEARCH UID n:*` always matches the
        highest UID even when it is below n (RFC 3501 6.4.8), hence the filter."""
        response = await self._run(
            self._client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH"
        )
        uids: set[int] = set()
        for line in _lines(response)[:-1]:  # the last line is the tagged completion
            words = line.split()
            if words and words[0] == b"SEARCH":
                words = words[1:]
            uids.update(int(word) for word in words if word.isdigit())
        return sorted(uid for uid in uids if uid > last_uid)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each message, to skip oversized mail without downloading it."""
        response = await self._run(
            self._client.uid("fetch", _uid_set(uids), "(UID RFC822.SIZE)"), "UID FETCH size"
        )
        sizes: dict[int, int] = {}
        for line in _lines(response):
            uid, size = _UID.search(line), _SIZE.search(line)
            if _FETCH_START.match(line) and uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def bodies(self, uids: list[int]) -> dict[int, bytes]:
        """The raw messages, without setting \\Seen (BODY.PEEK); a file stored
        as mail byte for byte (BINARY.PEEK) when the server offers BINARY."""
        response = await self._run(
            self._client.uid("fetch", _uid_set(uids), "(UID BODY.PEEK[])"), "UID FETCH"
        )
        found = _bodies(response.lines)
        files = [uid for uid, raw in found.items() if _file_without_nuls(raw)]
        if files and self._client.has_capability("BINARY"):
            response = await self._run(
                self._client.uid("fetch", _uid_set(files), "(UID BINARY.PEEK[])"),
                "UID FETCH BINARY",
            )
            binary = _bodies(response.lines)
            found.update((uid, raw) for uid, raw in binary.items() if not_mail(raw) is not None)
        return found

    async def add_flags(self, uids: list[int], flags: str) -> None:
        if uids:
            await self._run(
                self._client.uid("store", _uid_set(uids), "+FLAGS.SILENT", f"({flags})"),
                "UID STORE",
            )

    async def idle(
        self, seconds: float, check: Callable[[], Awaitable[None]], every: float
    ) -> bool:
        """IDLE until the server reports new mail (True) or `seconds` pass (False).

        `check` is awaited every `every` seconds meanwhile (the poller renews its
        lease there); whatever it raises ends the IDLE.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            idle = await self._client.idle_start(timeout=seconds + 60)
        except aioimaplib.AioImapException as exc:
            raise ImapUnavailable(f"{self.where}: IDLE refused ({exc})") from exc
        woken = False
        try:
            while not woken and (left := deadline - loop.time()) > 0:
                try:
                    pushed = await self._client.wait_server_push(timeout=min(left, every))
                except TimeoutError:
                    await check()
                    continue
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                woken = any(b"EXISTS" in line for line in pushed if isinstance(line, bytes))
        finally:
            if self._client.has_pending_idle():
                self._client.idle_done()
        await self._run(asyncio.wait_for(idle, COMMAND_TIMEOUT), "IDLE")
        return woken

    async def logout(self) -> None:
        """Say goodbye if the connection still works; close it in any case."""
        try:
            await asyncio.wait_for(self._client.logout(), 5)
        except (aioimaplib.AioImapException, OSError, TimeoutError):
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        transport = self._client.protocol.transport
        if transport is not None:
            transport.close()

    async def _run(self, awaitable: Awaitable[Response], what: str) -> Response:
        try:
            response = await awaitable
        except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
            raise ImapUnavailable(f"{self.where}: {what} failed ({_reason(exc)})") from exc
        if response.result != "OK":
            raise ImapRefused(f"{self.where}: {what} refused: {_text(response)}")
        return response


async def connect(
    host: str,
    port: int,
    tls: TlsMode,
    user: str,
    password: str,
    *,
    tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    command_timeout: float = COMMAND_TIMEOUT,
) -> ImapConnection:
    """Connect (TLS, STARTTLS or plain as configured) and LOGIN."""
    where = f"{host}:{port}"
    try:
        if tls is TlsMode.TLS:
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host, port, timeout=command_timeout, ssl_context=tls_context()
            )
        else:
            client = aioimaplib.IMAP4(host, port, timeout=command_timeout)
    except (OSError, ssl.SSLError) as exc:
        raise ImapUnavailable(f"cannot connect to {where}: {_reason(exc)}") from exc
    connection = ImapConnection(client, where)
    try:
        await client.wait_hello_from_server()
    except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
        connection.abort()
        raise ImapUnavailable(f"cannot connect to {where}: {_reason(exc)}") from exc
    try:
        if tls is TlsMode.STARTTLS:
            await _starttls(client, host, where, tls_context(), command_timeout)
        await connection._run(client.login(user, password), "LOGIN")
    except BaseException:
        connection.abort()
        raise
    return connection


async def _starttls(
    client: aioimaplib.IMAP4, host: str, where: str, context: ssl.SSLContext, seconds: float
) -> None:
    if not client.has_capability("STARTTLS"):
        raise ImapRefused(f"{where} does not offer STARTTLS (set TLS mode to tls or none)")
    protocol = client.protocol
    try:
        response = await asyncio.wait_for(
            protocol.execute(Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)), seconds
        )
        if response.result != "OK":
            raise ImapRefused(f"{where}: STARTTLS refused: {_text(response)}")
        transport = await asyncio.wait_for(
            asyncio.get_running_loop().start_tls(
                protocol.transport, protocol, context, server_hostname=host
            ),
            seconds,
        )
        protocol.transport = transport
        # What the server offers may change once the connection is secure (RFC 3501 6.2.1).
        await asyncio.wait_for(protocol.capability(), seconds)
    except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
        raise ImapUnavailable(f"{where}: STARTTLS failed ({_reason(exc)})") from exc


def _bodies(lines: list[bytes | bytearray]) -> dict[int, bytes]:
    """`n FETCH (UID u BODY[] {size}` (or `BINARY[] ~{size}`) + literal + `)` → {u: raw};
    UID may come after."""
    found: dict[int, bytes] = {}
    uid: int | None = None
    body: bytes | None = None

    def flush() -> None:
        if uid is not None and body is not None:
            found[uid] = body

    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if _FETCH_START.match(line):
            flush()
            uid, body = None, None
        match = _UID.search(line)
        if match:
            uid = int(match.group(1))
    flush()
    return found


def _file_without_nuls(raw: bytes) -> bool:
    """Whether `raw` is a file as a server sends it, its NULs replaced by 0x80."""
    return b"\x80" in raw and not_mail(raw.replace(b"\x80", b"\x00")) is not None


def _lines(response: Response) -> list[bytes]:
    return [line for line in response.lines if isinstance(line, bytes)]


def _text(response: Response) -> str:
    lines = _lines(response)
    return lines[-1].decode(errors="replace") if lines else response.result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text or type(exc).__name__


def _quote(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(uid) for uid in uids)
