"""Periodic background jobs, each run by one worker at a time.

A job is claimed by a compare-and-set on its lease row (the same statement on
SQLite and PostgreSQL): the claim succeeds only if no live lease exists and
the job is due. A worker that dies mid-run holds its lease until it expires;
then any other worker takes the job. Every node may run the runner: the
leases make each run happen once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.events.unit_of_work import store_write
from hub.models import utcnow
from storage.db import Database
from storage.repositories import leases as lease_rows

log = logging.getLogger(__name__)

# How often an idle runner looks for due jobs; jobs' own intervals are longer.
POLL_SECONDS = 5.0

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Job:
    """`run(now)` returns how many things it handled (for the log and the lease row)."""

    name: str
    every: timedelta
    run: Callable[[datetime], Awaitable[int]]
    # Longer than any run takes: a lease this old belongs to a dead worker.
    lease: timedelta = timedelta(minutes=5)


class JobRunner:
    def __init__(
        self, db: Database, jobs: list[Job], owner: str | None = None, clock: Clock = utcnow
    ) -> None:
        self._db = db
        self.jobs = jobs
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._clock = clock
        # When this runner next asks the store for each job. Claiming is a write
        # transaction; asking on every poll would take SQLite's one write lock
        # every few seconds for jobs that are due every half minute or hour.
        self._next_try: dict[str, datetime] = {}

    async def run_due(self) -> dict[str, int]:
        """Run every job that is due and not leased elsewhere; their results by name."""
        results: dict[str, int] = {}
        for job in self.jobs:
            now = self._clock()
            if now < self._next_try.get(job.name, now):
                continue
            # Whether we run it or another worker does, it is not due again before
            # `every` has passed (a dead worker's lease is found at the next try).
            self._next_try[job.name] = now + job.every
            if not await self._claim(job):
                continue
            try:
                handled = await job.run(self._clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; it runs again when next due", job.name)
                handled = -1
            await self._release(job, handled)
            results[job.name] = handled
            if handled:
                log.info("job %s handled %d", job.name, handled)
        return results

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run due jobs until `stop` is set; errors are logged, cancellation is not swallowed."""
        while not stop.is_set():
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job runner: a round failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
            except TimeoutError:
                pass

    async def _claim(self, job: Job) -> bool:
        now = self._clock()
        async with store_write(self._db) as conn:
            return await lease_rows.claim_due(
                conn, job.name, self.owner, now, now + job.lease, now - job.every
            )

    async def _release(self, job: Job, handled: int) -> None:
        async with store_write(self._db) as conn:
            await lease_rows.release(conn, job.name, self.owner, self._clock(), handled)


class Lease:
    """Work that one node at a time does for as long as it keeps renewing (an
    IMAP inbox's poller, say): a row in `job_leases` taken by compare-and-set
    when it has no live lease or is already ours. A node that dies stops
    renewing; once the lease has run out any other node takes the work over."""

    def __init__(
        self, db: Database, name: str, owner: str, length: timedelta, clock: Clock = utcnow
    ) -> None:
        self._db = db
        self.name = name
        self.owner = owner
        self.length = length
        self._clock = clock

    @property
    def renew_every(self) -> float:
        return self.length.total_seconds() / 3

    async def claim(self) -> bool:
        """Take or renew the lease; False while another live owner holds it."""
        now = self._clock()
        async with store_write(self._db) as conn:
            return await lease_rows.claim(conn, self.name, self.owner, now, now + self.length)

    async def release(self, handled: int | None = None) -> None:
        """Let another node take the work at once (a clean stop)."""
        ran_at = self._clock() if handled is not None else None
        async with store_write(self._db) as conn:
            await lease_rows.release(conn, self.name, self.owner, ran_at, handled)
