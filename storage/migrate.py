"""Apply and check Alembic migrations (`hub migrate`, start-up check)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import prepare_sqlite_file
from storage.errors import NotMigrated

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


def upgrade(database_url: str) -> None:
    """Bring the database to the newest revision (blocking; runs its own event loop)."""
    prepare_sqlite_file(database_url)
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_async(database_url: str) -> None:
    """`upgrade` from inside a running event loop."""
    await asyncio.to_thread(upgrade, database_url)


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Raise NotMigrated unless the schema is at the newest revision."""

    def current(sync_conn) -> str | None:  # type: ignore[no-untyped-def]
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        revision = await conn.run_sync(current)
    head = head_revision()
    if revision != head:
        state = "has no schema" if revision is None else f"is at revision {revision}"
        raise NotMigrated(
            f"The database {state}; this version needs revision {head}. "
            "Run `hub migrate` (or `make run`, which does it) and start again."
        )
