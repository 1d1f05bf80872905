"""The email outbox: durable delivery of queued mail with retries.

Each queued row is claimed by one sender at a time with a lease (a compare-
and-set on the row; on PostgreSQL candidates are picked with SKIP LOCKED so
several workers share the queue without waiting on each other). A 4xx answer
or an unreachable server retries with backoff; a 5xx answer fails the message
with the server's reason. A sender that dies after the server took the
message but before recording it leaves the lease to expire and the message is
sent again, with the same Message-ID, which receivers use to drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from hub.email.inboxes import EmailInboxService, MailServer
from hub.email.models import OutboxState
from hub.events import topics
from hub.events.bus import EventBus
from hub.events.unit_of_work import store_write
from hub.models import aware, utcnow
from hub.records import record_of
from storage.db import Database
from storage.repositories import email as mail_rows
from storage.repositories import outbox as outbox_rows

log = logging.getLogger(__name__)

BATCH = 20
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=3)
POLL_SECONDS = 5.0

Clock = Callable[[], datetime]


class Permanent(Exception):
    """The server refused for good (5xx): the message fails with this reason."""


class Temporary(Exception):
    """Try again later (4xx, connection refused, timeout)."""


@dataclass(frozen=True)
class Delivery:
    """One claimed message, ready to hand to the mail transport."""

    outbox_id: int
    conversation_id: int
    seq: int
    inbox_id: int
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int
    created_at: datetime


class MailTransport(Protocol):
    """How mail leaves the hub (channels/email/smtp_sender.py sends it over SMTP)."""

    async def send(self, server: MailServer, password: str | None, delivery: Delivery) -> None:
        """Hand one message to `server`; raise `Permanent` or `Temporary` if it is not taken."""


class EmailOutbox:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        inboxes: EmailInboxService,
        on_state: Callable[[int, int], Awaitable[None]],
        transport: MailTransport,
        owner: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._bus = bus
        self._inboxes = inboxes
        self._on_state = on_state
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._clock = clock
        self._wake = asyncio.Event()
        self.transport = transport

    async def notify(self) -> None:
        """Mail was queued: wake this process's sender and every other one."""
        self._wake.set()
        await self._bus.publish(topics.EMAIL_OUTBOX, {"type": "queued"})

    async def deliver_due(self) -> int:
        """Send every message that is due and not claimed elsewhere; how many were tried."""
        tried = 0
        while True:
            batch = await self._claim()
            if not batch:
                return tried
            for delivery in batch:
                await self._deliver(delivery)
                tried += 1

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, waking on new mail or every few seconds."""
        async with self._bus.subscribe(topics.EMAIL_OUTBOX) as subscription:
            waker = asyncio.create_task(self._wake_on_events(subscription))
            try:
                while not stop.is_set():
                    self._wake.clear()
                    try:
                        await self.deliver_due()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("email outbox: a round failed; trying again")
                    stopped = asyncio.create_task(stop.wait())
                    woken = asyncio.create_task(self._wake.wait())
                    await asyncio.wait(
                        {stopped, woken}, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                    )
                    stopped.cancel()
                    woken.cancel()
            finally:
                waker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waker

    async def _wake_on_events(self, subscription) -> None:  # type: ignore[no-untyped-def]
        async for _event in subscription:
            self._wake.set()

    async def retry(self, conversation_id: int, seq: int) -> bool:
        """An agent asks to send a failed message again; False if it is not failed."""
        now = self._clock()
        async with store_write(self._db) as conn:
            email_id = await mail_rows.id_at(conn, conversation_id, seq)
            if email_id is None:
                return False
            done = await outbox_rows.set_state_of_mail(
                conn,
                email_id,
                {
                    "state": OutboxState.QUEUED.value,
                    "next_attempt_at": now,
                    "created_at": now,  # the give-up clock starts again
                    "claimed_by": None,
                    "claimed_until": None,
                },
                only_if=OutboxState.FAILED.value,
            )
        if not done:
            return False
        await self._on_state(conversation_id, seq)
        await self.notify()
        return True

    async def _claim(self) -> list[Delivery]:
        now = self._clock()
        async with store_write(self._db) as conn:
            rows = await outbox_rows.claim(
                conn,
                OutboxState.QUEUED.value,
                now,
                self.owner,
                now + LEASE,
                BATCH,
                skip_locked=not self._db.is_sqlite,
            )
        return [
            record_of(
                Delivery,
                row,
                outbox_id=row.id,
                inbox_id=row.email_inbox_id,
                raw=row.data,
            )
            for row in rows
        ]

    async def _deliver(self, delivery: Delivery) -> None:
        error: str | None = None
        state = OutboxState.SENT
        try:
            inbox = await self._inboxes.get(delivery.inbox_id)
            if not inbox.smtp.configured:
                raise Temporary(f"no outgoing SMTP server is set for {inbox.address}")
            server = inbox.smtp
            password = self._inboxes.password(server) if server.user else None
            await self.transport.send(server, password, delivery)
        except asyncio.CancelledError:
            raise
        except Permanent as exc:
            state, error = OutboxState.FAILED, str(exc)
        except Temporary as exc:
            state, error = OutboxState.QUEUED, str(exc)
        except Exception as exc:  # a bug or an unexpected library error: retry, loudly
            log.exception("email outbox: sending message %d failed", delivery.outbox_id)
            state, error = OutboxState.QUEUED, f"{type(exc).__name__}: {exc}"
        await self._record(delivery, state, error)

    async def _record(self, delivery: Delivery, state: OutboxState, error: str | None) -> None:
        now = self._clock()
        attempts = delivery.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error[:500] if error else None,
        }
        if state is OutboxState.SENT:
            values.update(state=state.value, sent_at=now)
        elif state is OutboxState.QUEUED and now - aware(delivery.created_at) > GIVE_UP_AFTER:
            values.update(state=OutboxState.FAILED.value)
            values["last_error"] = f"gave up after {attempts} attempts: {error}"[:500]
        elif state is OutboxState.QUEUED:
            values.update(next_attempt_at=now + backoff(attempts))
            log.warning(
                "email outbox: message %d not sent (%s); attempt %d, trying again later",
                delivery.outbox_id,
                error,
                attempts,
            )
        else:
            values.update(state=state.value)
            log.warning("email outbox: message %d failed: %s", delivery.outbox_id, error)
        async with store_write(self._db) as conn:
            # Only the claimant records: a lease that ran out belongs to someone else now.
            await outbox_rows.record(conn, delivery.outbox_id, self.owner, values)
        await self._on_state(delivery.conversation_id, delivery.seq)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … up to an hour, with ±20 % jitter so retries spread out."""
    delay = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 (not a secret)
