"""Job leases: which node runs a job (or holds a piece of work) until when
(hub/jobs/runner.py). Every claim is one compare-and-set, race-free across nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import job_leases


async def _ensure_row(conn: AsyncConnection, name: str) -> None:
    insert_ = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    await conn.execute(
        insert_(job_leases)
        .values(name=name)
        .on_conflict_do_nothing(index_elements=[job_leases.c.name])
    )


async def claim_due(
    conn: AsyncConnection, name: str, owner: str, now: datetime, until: datetime, ran_by: datetime
) -> bool:
    """Take the job's lease until `until` if nobody holds it and it last ran by `ran_by`."""
    await _ensure_row(conn, name)
    claimed = await conn.execute(
        job_leases.update()
        .where(job_leases.c.name == name)
        .where(sa.or_(job_leases.c.lease_until.is_(None), job_leases.c.lease_until < now))
        .where(sa.or_(job_leases.c.last_run_at.is_(None), job_leases.c.last_run_at <= ran_by))
        .values(owner=owner, lease_until=until)
    )
    return claimed.rowcount == 1


async def claim(
    conn: AsyncConnection, name: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Take or renew the lease until `until` unless another live owner holds it."""
    await _ensure_row(conn, name)
    claimed = await conn.execute(
        job_leases.update()
        .where(job_leases.c.name == name)
        .where(
            sa.or_(
                job_leases.c.owner == owner,
                job_leases.c.lease_until.is_(None),
                job_leases.c.lease_until < now,
            )
        )
        .values(owner=owner, lease_until=until)
    )
    return claimed.rowcount == 1


async def release(
    conn: AsyncConnection, name: str, owner: str, ran_at: datetime | None, result: Any = None
) -> None:
    """End `owner`'s lease; `ran_at`: also record a finished run and its result."""
    values: dict[str, Any] = {"lease_until": None}
    if ran_at is not None:
        values.update(last_run_at=ran_at, last_result=result)
    await conn.execute(
        job_leases.update()
        .where(job_leases.c.name == name)
        .where(job_leases.c.owner == owner)
        .values(values)
    )
