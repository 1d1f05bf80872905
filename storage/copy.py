"""Copy every table from one store to another (`hub migrate-store`), verified by counts.

Used to move an embedded SQLite install to PostgreSQL. The target is migrated
first and must be empty; rows are copied in dependency order in batches, then
PostgreSQL's id sequences are moved past the copied ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from storage.db import Database
from storage.errors import CopyError
from storage.migrate import upgrade_async
from storage.tables import metadata

# Rows per INSERT: large enough to be fast, small enough for any driver's
# parameter limit (SQLite allows 32,766 bound parameters).
BATCH_ROWS = 500

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


async def copy_store(source_url: str, target_url: str, progress: Progress) -> list[TableCount]:
    """Copy all rows; returns per-table counts (raises CopyError if the target is not empty)."""
    await upgrade_async(target_url)
    source, target = Database(source_url), Database(target_url)
    try:
        await _refuse_non_empty(target)
        for table in metadata.sorted_tables:
            await _copy_table(source, target, table, progress)
        if not target.is_sqlite:
            await _advance_sequences(target)
        return [
            TableCount(table.name, await _count(source, table), await _count(target, table))
            for table in metadata.sorted_tables
        ]
    finally:
        await source.dispose()
        await target.dispose()


async def _count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0


async def _refuse_non_empty(target: Database) -> None:
    for table in metadata.sorted_tables:
        if await _count(target, table):
            raise CopyError(
                f"the target database already has rows in {table.name}; "
                "migrate-store only copies into an empty database"
            )


async def _copy_table(
    source: Database, target: Database, table: sa.Table, progress: Progress
) -> None:
    total = await _count(source, table)
    done = 0
    progress(table.name, done, total)
    order = list(table.primary_key.columns)
    async with source.read() as reader:
        result = await reader.stream(sa.select(table).order_by(*order))
        async for batch in result.partitions(BATCH_ROWS):
            rows = [dict(row._mapping) for row in batch]
            async with target.write() as writer:
                await writer.execute(table.insert(), rows)
            done += len(rows)
            progress(table.name, done, total)


async def _advance_sequences(target: Database) -> None:
    """Serial ids continue after the copied rows instead of colliding with them."""
    async with target.write() as conn:
        for table in metadata.sorted_tables:
            for column in table.primary_key.columns:
                if not isinstance(column.type, sa.Integer) or len(table.primary_key.columns) > 1:
                    continue
                highest = sa.select(sa.func.max(column)).scalar_subquery()
                await conn.execute(
                    sa.select(
                        sa.func.setval(
                            sa.func.pg_get_serial_sequence(table.name, column.name),
                            sa.func.coalesce(highest, 0) + 1,
                            False,
                        )
                    )
                )
