"""A fixture for service tests that run on both engines (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from hub.settings import Settings
from tests.conftest import make_settings, migrated_settings
from tests.servers import migrated_postgres_template, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request, tmp_path, migrated_store) -> Settings:  # type: ignore[no-untyped-def]
    """Every test of a module that imports this runs on both engines the store supports."""
    if request.param == "sqlite":
        yield migrated_settings(tmp_path, migrated_store)
        return
    async with postgres_database(template=await migrated_postgres_template()) as url:
        yield make_settings(tmp_path, HUB_DATABASE_URL=url)
