"""What the console reads of calls: one call, the call log with its filters,
and the figures beside it. `CallService` (calls.py) adds the writing."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound
from hub.models import aware, utcnow
from hub.records import record_of
from hub.voice.models import DEFAULT_PAGE, Call, CallFilter, Outcome
from storage.db import Database
from storage.repositories import calls as call_rows


def call_of(row: sa.Row) -> Call:
    return record_of(
        Call,
        row,
        outcome=Outcome(row.outcome) if row.outcome else None,
        started_at=aware(row.started_at),
        answered_at=aware(row.answered_at),
        ended_at=aware(row.ended_at),
        call_back=bool(row.call_back),
        called_back_at=aware(row.called_back_at),
    )


class CallReads:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self.clock = clock

    async def get(self, call_id: int) -> Call:
        async with self._db.read() as conn:
            return await self._get(conn, call_id)

    async def list(
        self, filters: CallFilter | None = None, limit: int = DEFAULT_PAGE
    ) -> builtins.list[Call]:
        """Calls, newest first."""
        filters = filters or CallFilter()
        since = None
        if filters.today:
            since = self.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        async with self._db.read() as conn:
            rows = await call_rows.page(
                conn,
                limit,
                direction=filters.direction.value if filters.direction else None,
                outcome=filters.outcome.value if filters.outcome else None,
                answered_by=filters.agent,
                since=since,
                waiting_for_call_back=filters.call_back,
                contact_id=filters.contact_id,
                inbox_ids=filters.inbox_ids,
            )
        return [call_of(row) for row in rows]

    async def known_external_ids(self, inbox_id: int) -> set[str]:
        """Call ids already stored for a line (lets an import skip them in bulk)."""
        async with self._db.read() as conn:
            return await call_rows.external_ids(conn, inbox_id)

    async def count_waiting_for_call_back(self, inbox_ids: Collection[int] | None = None) -> int:
        """Missed calls not yet called back (in `inbox_ids` only, unless None)."""
        async with self._db.read() as conn:
            return await call_rows.count_waiting_for_call_back(conn, inbox_ids)

    async def agents_who_answered(self) -> builtins.list[str]:
        async with self._db.read() as conn:
            return await call_rows.answerers(conn)

    async def _get(self, conn: AsyncConnection, call_id: int) -> Call:
        row = await call_rows.row(conn, call_id)
        if row is None:
            raise NotFound(f"no call {call_id}")
        return call_of(row)
