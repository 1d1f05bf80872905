"""IMAP polling: mail in an inbox's IMAP folder becomes tickets.

For each IMAP-enabled inbox one task (on one node: see imap_lease.py and hub.jobs.Lease) connects,
logs in, SELECTs the folder and fetches every message above the last UID it
stored, in UID order and in bounded batches, without marking it read
(BODY.PEEK). Each message is parsed and stored by `hub.email.ingest`; only
after that transaction has committed does the poller mark the message \\Seen
and save the position (UIDVALIDITY, last UID). So a crash at any point loses
nothing: mail stored but not yet recorded as done is fetched again, and ingest
stores the same Message-ID once (mail without one gets a stable id from its
bytes). \\Seen is a courtesy to people who look at the mailbox; the poller
goes by UIDs, never by flags.

When the folder's UIDVALIDITY is not the one stored, its UIDs were reassigned
(the mailbox was rebuilt or re-created): the poller starts from UID 1 again.

A message the poller will not store is *skipped*: flagged \\Flagged and left
unread so a person notices it in their mail client, logged, shown on the inbox
in the console, and the position moves past it. That happens to a message over
`max_message_bytes` (before it is downloaded), and to one whose ingest failed
`max_attempts` times with an error that is not an outage. An outage (database
or IMAP server unreachable, timeouts) never skips anything: the poll stops and
is retried with backoff. Attempts are counted in memory, so a restart gives a
failing message its attempts again.

After a poll the poller IDLEs (RFC 2177) when the server offers it, until the
server reports new mail or 25 minutes pass, then polls again; otherwise it
polls every `poll_every` seconds. Errors (wrong password, connection refused)
are recorded on the inbox and retried with backoff; each inbox has its own
task, so one inbox's trouble never holds up another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy.exc

from channels.email.imap_client import (
    COMMAND_TIMEOUT,
    IDLE_SECONDS,
    ImapConnection,
    ImapError,
    ImapUnavailable,
    connect,
)
from channels.email.imap_lease import imap_lease
from hub.core import Hub
from hub.email.inboxes import EmailInbox, MailServer
from hub.email.models import Envelope, InboundEmail
from hub.errors import Unavailable

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Inboxes added, changed or disabled in the console are picked up this fast.
RESCAN_SECONDS = 30.0


@dataclass(frozen=True)
class PollSettings:
    # Between polls when the server has no IDLE.
    poll_every: float = 60.0
    # Longest IDLE before polling anyway (servers drop clients idle for 30 min).
    idle_seconds: float = IDLE_SECONDS
    # Bigger messages are skipped before they are downloaded.
    max_message_bytes: int = 25 * MB
    # One FETCH asks for at most this many messages and (roughly) bytes.
    batch_messages: int = 25
    batch_bytes: int = 32 * MB
    # A message whose ingest fails (not an outage) this often is skipped.
    max_attempts: int = 3
    # Backoff after a failed poll: doubling from first to most, with jitter.
    first_backoff: float = 5.0
    most_backoff: float = 300.0
    command_timeout: float = COMMAND_TIMEOUT
    tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context


class _LeaseLost(Exception):
    """Another node took the inbox over (ours had expired)."""


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def _parse(raw: bytes) -> InboundEmail:
    from channels.email.intake import parse_or_keep

    return await parse_or_keep(raw)


def _is_outage(exc: BaseException) -> bool:
    """Errors of the surroundings, not of the message: retry, never skip."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | Unavailable
        | ImapError
        | sqlalchemy.exc.OperationalError
        | sqlalchemy.exc.InterfaceError
        | sqlalchemy.exc.TimeoutError,
    )


class ImapPoller:
    """Polls one inbox until cancelled (or until it is no longer IMAP-enabled)."""

    def __init__(
        self,
        hub: Hub,
        inbox_id: int,
        settings: PollSettings | None = None,
        owner: str | None = None,
        parse: Callable[[bytes], Awaitable[InboundEmail]] = _parse,
    ) -> None:
        self._hub = hub
        self.inbox_id = inbox_id
        self.settings = settings or PollSettings()
        self.lease = imap_lease(hub.db, inbox_id, owner or new_owner())
        self._parse = parse
        self._attempts: dict[tuple[int, int], int] = {}
        self._renewed_at = 0.0
        self.polls = 0  # finished polls (tests and logs)

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                if not await self.lease.claim():
                    await asyncio.sleep(self.lease.renew_every)
                    continue
                self._renewed_at = _now()
                try:
                    if not await self._session():
                        return  # disabled or deleted
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except _LeaseLost:
                    log.warning("IMAP inbox %d: lease taken over by another worker", self.inbox_id)
                    continue
                except Exception as exc:
                    failures += 1
                    await self._failed(exc)
                    await asyncio.sleep(self._backoff(failures))
        finally:
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def poll_once(self) -> int:
        """One poll if no other worker holds the inbox (`hub worker --once`);
        errors are recorded on the inbox. How many messages were stored."""
        if not await self.lease.claim():
            return 0
        handled = 0
        try:
            inbox = await self._inbox()
            if inbox is not None:
                connection = await self._connect(inbox)
                try:
                    handled = await self._poll(connection, inbox)
                finally:
                    await connection.logout()
        except Exception as exc:
            if not isinstance(exc, _LeaseLost):
                await self._failed(exc)
        finally:
            await self.lease.release(handled)
        return handled

    # ---- one connection -----------------------------------------------------

    async def _session(self) -> bool:
        """Connect and poll, then IDLE or wait, and poll again, until something
        fails. Returns False when the inbox is no longer polled."""
        inbox = await self._inbox()
        if inbox is None:
            return False
        connection = await self._connect(inbox)
        cancelled = False
        try:
            while True:
                await self._poll(connection, inbox)
                await self._renew(force=True)
                if connection.supports_idle:
                    await connection.idle(
                        self.settings.idle_seconds, self._renew, self.lease.renew_every
                    )
                else:
                    await self._wait(self.settings.poll_every)
                fresh = await self._inbox()
                if fresh is None:
                    return False
                if _connection_key(fresh) != _connection_key(inbox):
                    return True  # settings changed: the caller connects anew
                inbox = fresh
        except asyncio.CancelledError:
            cancelled = True
            connection.abort()  # no goodbye: stopping must not wait for the server
            raise
        finally:
            if not cancelled:
                await connection.logout()

    async def _connect(self, inbox: EmailInbox) -> ImapConnection:
        server = inbox.imap
        password = self._hub.email_inboxes.password(server)
        if password is None:
            raise ImapError("no IMAP password is set (or its environment variable is empty)")
        return await connect(
            server.host or "",
            server.port or 0,
            server.tls,
            server.user or "",
            password,
            tls_context=self.settings.tls_context,
            command_timeout=self.settings.command_timeout,
        )

    async def _poll(self, connection: ImapConnection, inbox: EmailInbox) -> int:
        """Store everything above the saved position; returns how many messages
        were new (duplicates of stored ones are not counted)."""
        folder = await connection.select(inbox.imap_folder)
        uidvalidity = folder.uidvalidity
        last = inbox.imap_last_uid
        if inbox.imap_uidvalidity is not None and inbox.imap_uidvalidity != uidvalidity:
            # The folder's UIDs were reassigned: fetch it all again. Messages the
            # hub already has come back as duplicates, which ingest recognises by
            # Message-ID (or by the bytes' hash) and does not store twice.
            log.warning(
                "IMAP inbox %d: UIDVALIDITY of %s changed (%d → %d); reading it from UID 1",
                inbox.id,
                inbox.imap_folder,
                inbox.imap_uidvalidity,
                uidvalidity,
            )
            last = 0
        stored = 0
        notes: list[str] = []
        while uids := await connection.uids_after(last):
            for batch in _chunks(uids, self.settings.batch_messages):
                sizes = await connection.sizes(batch)
                for group in self._by_bytes(batch, sizes):
                    last, count = await self._fetch(
                        connection, inbox, uidvalidity, group, sizes, notes
                    )
                    stored += count
                    await self._renew()
        # Record that the inbox was checked: an earlier error is cleared, what
        # this poll skipped stays shown.
        await self._hub.email_inboxes.save_imap_position(
            inbox.id, uidvalidity, last, "; ".join(notes) or None
        )
        self.polls += 1
        if stored:
            log.info("IMAP inbox %d: stored %d messages", inbox.id, stored)
        return stored

    async def _fetch(
        self,
        connection: ImapConnection,
        inbox: EmailInbox,
        uidvalidity: int,
        uids: list[int],
        sizes: dict[int, int],
        notes: list[str],
    ) -> tuple[int, int]:
        """Store one group of messages in UID order; returns (new position, new messages)."""
        limit = self.settings.max_message_bytes
        wanted = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
        bodies = await connection.bodies(wanted) if wanted else {}
        done: list[int] = []
        new = 0  # not counting duplicates
        skipped: list[int] = []
        position = uids[0] - 1
        failure: BaseException | None = None
        for uid in uids:
            if uid not in sizes:
                pass  # expunged since the search: nothing to store
            elif sizes[uid] > limit:
                skipped.append(uid)
                notes.append(
                    f"message UID {uid} skipped: {_size(sizes[uid])} is over the "
                    f"{_size(limit)} limit (flagged in the mailbox)"
                )
            else:
                try:
                    if uid not in bodies:
                        raise ImapUnavailable(f"{connection.where} did not return message {uid}")
                    ingested = await self._hub.email.ingest(
                        inbox, await self._parse(bodies[uid]), Envelope()
                    )
                    done.append(uid)
                    new += ingested.outcome != "duplicate"
                    self._attempts.pop((uidvalidity, uid), None)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    note = self._give_up(uidvalidity, uid, exc)
                    if note is None:
                        failure = exc
                        break
                    skipped.append(uid)
                    notes.append(note)
            position = uid
        if position >= uids[0]:
            await self._acknowledge(
                connection, inbox, uidvalidity, done, skipped, position, "; ".join(notes) or None
            )
        if failure is not None:
            raise failure
        return position, new

    def _give_up(self, uidvalidity: int, uid: int, exc: Exception) -> str | None:
        """A note when the message is to be skipped; None to try it again later."""
        if _is_outage(exc):
            return None
        key = (uidvalidity, uid)
        self._attempts[key] = attempts = self._attempts.get(key, 0) + 1
        log.exception(
            "IMAP inbox %d: storing message UID %d failed (attempt %d of %d)",
            self.inbox_id,
            uid,
            attempts,
            self.settings.max_attempts,
        )
        if attempts < self.settings.max_attempts:
            return None
        del self._attempts[key]
        return (
            f"message UID {uid} skipped after {attempts} failed attempts "
            f"({type(exc).__name__}: {exc}) (flagged in the mailbox)"
        )

    async def _acknowledge(
        self,
        connection: ImapConnection,
        inbox: EmailInbox,
        uidvalidity: int,
        stored: list[int],
        skipped: list[int],
        position: int,
        note: str | None,
    ) -> None:
        """After the store committed: flag the messages, then save the position."""
        await connection.add_flags(stored, "\\Seen")
        await connection.add_flags(skipped, "\\Flagged")
        if note:
            log.warning("IMAP inbox %d: %s", inbox.id, note)
        await self._hub.email_inboxes.save_imap_position(inbox.id, uidvalidity, position, note)

    # ---- helpers ----------------------------------------------------------------

    async def _inbox(self) -> EmailInbox | None:
        inbox = await self._hub.email_inboxes.find(self.inbox_id)
        return inbox if inbox is not None and inbox.imap_enabled else None

    async def _renew(self, force: bool = False) -> None:
        if force or _now() - self._renewed_at >= self.lease.renew_every:
            if not await self.lease.claim():
                raise _LeaseLost
            self._renewed_at = _now()

    async def _wait(self, seconds: float) -> None:
        """Sleep between polls, keeping the lease."""
        end = _now() + seconds
        while (left := end - _now()) > 0:
            await asyncio.sleep(min(left, self.lease.renew_every))
            await self._renew()

    async def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, ImapError):
            text = str(exc)
            log.warning("IMAP inbox %d: %s", self.inbox_id, text)
        else:
            text = f"{type(exc).__name__}: {exc}"
            log.error("IMAP inbox %d: poll failed", self.inbox_id, exc_info=exc)
        with contextlib.suppress(Exception):
            await self._hub.email_inboxes.record_imap_error(self.inbox_id, text)

    def _backoff(self, failures: int) -> float:
        delay = min(self.settings.first_backoff * 2 ** (failures - 1), self.settings.most_backoff)
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 (not a secret)

    def _by_bytes(self, uids: list[int], sizes: dict[int, int]) -> list[list[int]]:
        """Split so that one FETCH brings at most about `batch_bytes` (oversized
        messages are not downloaded and count nothing)."""
        groups: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            size = size if size <= self.settings.max_message_bytes else 0
            if groups[-1] and total + size > self.settings.batch_bytes:
                groups.append([])
                total = 0
            groups[-1].append(uid)
            total += size
        return groups


class ImapPollers:
    """One `ImapPoller` task per IMAP-enabled inbox, following the console's changes."""

    def __init__(
        self,
        hub: Hub,
        settings: PollSettings | None = None,
        rescan_every: float = RESCAN_SECONDS,
        owner: str | None = None,
    ) -> None:
        self._hub = hub
        self.settings = settings or PollSettings()
        self.rescan_every = rescan_every
        self.owner = owner or new_owner()
        self.tasks: dict[int, tuple[tuple[object, ...], asyncio.Task[None]]] = {}

    async def run_forever(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self._follow(await self._hub.email_inboxes.polled())
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("IMAP pollers: reading the inboxes failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.rescan_every)
        finally:
            await self._stop_all()

    async def poll_once(self) -> int | None:
        """One poll of every IMAP-enabled inbox; None when there are none."""
        inboxes = await self._hub.email_inboxes.polled()
        if not inboxes:
            return None
        handled = 0
        for inbox in inboxes:
            handled += await self._poller(inbox.id).poll_once()
        return handled

    def _follow(self, inboxes: list[EmailInbox]) -> None:
        wanted = {inbox.id: _connection_key(inbox) for inbox in inboxes}
        for inbox_id, (key, task) in list(self.tasks.items()):
            if wanted.get(inbox_id) == key and not task.done():
                continue
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("IMAP poller %d stopped", inbox_id, exc_info=task.exception())
            task.cancel()
            del self.tasks[inbox_id]
        for inbox_id, key in wanted.items():
            if inbox_id not in self.tasks:
                task = asyncio.create_task(
                    self._poller(inbox_id).run(), name=f"imap-poller-{inbox_id}"
                )
                self.tasks[inbox_id] = (key, task)

    def _poller(self, inbox_id: int) -> ImapPoller:
        return ImapPoller(self._hub, inbox_id, self.settings, self.owner)

    async def _stop_all(self) -> None:
        tasks = [task for _key, task in self.tasks.values()]
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _connection_key(inbox: EmailInbox) -> tuple[MailServer, str, str]:
    """What a running poller depends on; when it changes the poller starts anew."""
    return (inbox.imap, inbox.imap_folder, inbox.address)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{size / 1024:.0f} kB"


def _now() -> float:
    return asyncio.get_running_loop().time()
