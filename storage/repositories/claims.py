"""Claims on a value that may not be stored yet (a call's id, a caller's number):
the first transaction to claim it goes on, the others wait for it to end and
then find what it stored. No retry and no half-done work to undo."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim(conn: AsyncConnection, key: str) -> None:
    """Hold `key` until the transaction ends (PostgreSQL: a transaction-scoped
    advisory lock on its hash; two keys sharing a hash only queue each other).
    SQLite needs none: its writers run one at a time."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
        )
