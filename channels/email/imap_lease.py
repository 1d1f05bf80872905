"""One IMAP poller per inbox across every node: a lease row in `job_leases`.

The same compare-and-set as `hub.jobs.JobRunner._claim`: the row `imap:<inbox>`
is taken when it has no live lease (or is already ours) and renewed while the
poller works. A node that dies stops renewing; once the lease has run out any
other worker takes the inbox over.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.jobs import Clock
from hub.models import utcnow
from storage.db import Database
from storage.tables import job_leases

# How long a claim lasts without renewal: a dead node's inbox is picked up
# by another worker within this long. Renewed every third of it.
LEASE = timedelta(seconds=90)


class ImapLease:
    def __init__(
        self,
        db: Database,
        inbox_id: int,
        owner: str,
        length: timedelta = LEASE,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self.name = f"imap:{inbox_id}"
        self.owner = owner
        self.length = length
        self._clock = clock

    @property
    def renew_every(self) -> float:
        return self.length.total_seconds() / 3

    async def claim(self) -> bool:
        """Take or renew the lease; False while another live owner holds it."""
        now = self._clock()
        insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
        async with self._db.write() as conn:
            await conn.execute(
                insert(job_leases)
                .values(name=self.name)
                .on_conflict_do_nothing(index_elements=[job_leases.c.name])
            )
            claimed = await conn.execute(
                job_leases.update()
                .where(job_leases.c.name == self.name)
                .where(
                    sa.or_(
                        job_leases.c.owner == self.owner,
                        job_leases.c.lease_until.is_(None),
                        job_leases.c.lease_until < now,
                    )
                )
                .values(owner=self.owner, lease_until=now + self.length)
            )
            return claimed.rowcount == 1

    async def release(self, handled: int | None = None) -> None:
        """Let another worker take the inbox at once (a clean stop)."""
        values: dict[str, object] = {"lease_until": None}
        if handled is not None:
            values.update(last_run_at=self._clock(), last_result=handled)
        async with self._db.write() as conn:
            await conn.execute(
                job_leases.update()
                .where(job_leases.c.name == self.name)
                .where(job_leases.c.owner == self.owner)
                .values(values)
            )
