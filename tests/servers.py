"""Real servers the tests use: PostgreSQL on loopback, one throw-away database each.

On a developer's laptop without PostgreSQL the tests that need it skip with the
reason; under CI=true they fail instead, because CI must run everything.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from storage.migrate import upgrade_async

POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: nothing may skip; .ci/run starts the servers)")
    pytest.skip(reason)


def _asyncpg_url(name: str) -> str:
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def _admin():  # type: ignore[no-untyped-def]
    import asyncpg

    try:
        return await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")


@asynccontextmanager
async def postgres_database(template: str | None = None) -> AsyncIterator[str]:
    """A fresh database (a copy of `template`, if given); yields its SQLAlchemy
    asyncpg URL and drops it afterwards."""
    admin = await _admin()
    name = f"hub_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield _asyncpg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


_template: str | None = None


async def migrated_postgres_template() -> str:
    """A database at the head revision, made once per test process and dropped
    when it exits: `postgres_database(template=…)` copies it, far faster than
    migrating each test's database."""
    global _template
    if _template is None:
        admin = await _admin()
        name = f"hub_template_{secrets.token_hex(6)}"
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        atexit.register(_drop_at_exit, name)
        await upgrade_async(_asyncpg_url(name))
        _template = name
    return _template


def _drop_at_exit(name: str) -> None:
    async def drop() -> None:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def require_redis() -> None:
    """Skip (or fail under CI) unless Redis answers at REDIS_URL."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
