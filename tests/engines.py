"""A fixture for service tests that run on both engines (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from hub.settings import Settings
from storage.migrate import upgrade_async
from tests.conftest import make_settings
from tests.servers import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Every test of a module that imports this runs on both engines the store supports."""
    if request.param == "sqlite":
        chosen = make_settings(tmp_path)
        await upgrade_async(chosen.database_url)
        yield chosen
        return
    async with postgres_database() as url:
        chosen = make_settings(tmp_path, HUB_DATABASE_URL=url)
        await upgrade_async(url)
        yield chosen
