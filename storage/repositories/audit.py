"""The admins' audit log: `audit_log` (hub/audit.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import audit_log


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(audit_log.insert().values(values))


async def page(conn: AsyncConnection, limit: int, before_id: int | None) -> list[sa.Row]:
    """Entries newest first, older than `before_id` if given."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return list(await conn.execute(query))
