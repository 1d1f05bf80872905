"""One IMAP poller per inbox across every node: the lease `imap:<inbox id>`."""

from __future__ import annotations

from datetime import timedelta

from hub.jobs.runner import Clock, Lease
from hub.models import utcnow
from storage.db import Database

# How long a claim lasts without renewal: a dead node's inbox is picked up
# by another worker within this long. Renewed every third of it.
LEASE = timedelta(seconds=90)


def imap_lease(
    db: Database, inbox_id: int, owner: str, length: timedelta = LEASE, clock: Clock = utcnow
) -> Lease:
    return Lease(db, f"imap:{inbox_id}", owner, length, clock)
