"""The `hub` command line, run as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def hub(tmp_path, *args: str, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands(tmp_path):
    result = hub(tmp_path, "--help")
    assert result.returncode == 0
    for command in (
        "serve",
        "migrate",
        "bootstrap",
        "create-agent",
        "set-password",
        "import-calls",
        "worker",
        "migrate-store",
        "cleanup",
    ):
        assert command in result.stdout


def test_serve_refuses_an_unmigrated_database_with_the_fix(tmp_path):
    result = hub(tmp_path, "serve", "--port", "0")
    assert result.returncode == 2
    assert "Run `hub migrate`" in result.stderr


def test_bootstrap_creates_one_admin_and_the_demo_site_once(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    first = hub(tmp_path, "bootstrap")
    assert first.returncode == 0, first.stderr
    assert "email:    admin@example.com" in first.stdout
    assert "password: " in first.stdout
    assert "/demo" in first.stdout
    second = hub(tmp_path, "bootstrap")
    assert second.returncode == 0
    assert "password: " not in second.stdout


def test_create_agent_and_set_password(tmp_path):
    hub(tmp_path, "migrate")
    env = {"NEW_PW": "a long enough password"}
    made = hub(
        tmp_path,
        "create-agent",
        "kim@example.com",
        "--name",
        "Kim",
        "--role",
        "admin",
        "--password-env",
        "NEW_PW",
        extra_env=env,
    )
    assert made.returncode == 0, made.stderr
    assert "Created admin Kim <kim@example.com>." in made.stdout
    again = hub(
        tmp_path,
        "create-agent",
        "kim@example.com",
        "--name",
        "Kim",
        "--password-env",
        "NEW_PW",
        extra_env=env,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    reset = hub(
        tmp_path, "set-password", "kim@example.com", "--password-env", "NEW_PW", extra_env=env
    )
    assert reset.returncode == 0


@pytest.mark.parametrize("password", ["short", ""])
def test_weak_or_missing_passwords_are_refused(tmp_path, password):
    hub(tmp_path, "migrate")
    result = hub(
        tmp_path,
        "create-agent",
        "lee@example.com",
        "--name",
        "Lee",
        "--password-env",
        "PW",
        extra_env={"PW": password},
    )
    assert result.returncode == 2
    assert "password" in result.stderr


def test_a_bad_setting_stops_with_the_variable_named(tmp_path):
    result = hub(tmp_path, "migrate", extra_env={"HUB_PORT": "http"})
    assert result.returncode == 2
    assert "HUB_PORT must be a port number" in result.stderr


# ---- phone calls ---------------------------------------------------------------------

IMPORT_ROWS = 2000


def test_import_calls_is_idempotent_on_a_file_of_thousands_of_rows(tmp_path):
    from tests.cdr_rows import write_master_csv

    assert hub(tmp_path, "migrate").returncode == 0
    created = hub(
        tmp_path, "create-phone-line", "Support", "--number", "020 7946 0000", "--region", "GB"
    )
    assert created.returncode == 0, created.stderr
    assert "/voice/cti/" in created.stdout
    csv_path = tmp_path / "Master.csv"
    write_master_csv(csv_path, IMPORT_ROWS)
    with csv_path.open("a") as handle:
        handle.write('"","0770","x","","","","","Dial","","not a time","","","0","0","ANSWERED"\n')

    first = hub(tmp_path, "import-calls", str(csv_path), "--timezone", "Europe/London")
    assert first.returncode == 0, first.stderr
    assert f"Imported {IMPORT_ROWS} calls; 0 were already there; 1 rows" in first.stdout
    assert f"row {IMPORT_ROWS + 1}: start is not a time" in first.stdout

    again = hub(tmp_path, "import-calls", str(csv_path))
    assert again.returncode == 0, again.stderr
    assert f"Imported 0 calls; {IMPORT_ROWS} were already there" in again.stdout


def test_import_calls_explains_a_missing_file_or_line(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    missing = hub(tmp_path, "import-calls", "nope.csv")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "empty.csv").write_text("")
    no_line = hub(tmp_path, "import-calls", "empty.csv")
    assert no_line.returncode == 2 and "--inbox" in no_line.stderr


def test_worker_once_runs_the_due_jobs_and_exits(tmp_path):
    hub(tmp_path, "migrate")
    first = hub(tmp_path, "worker", "--once")
    assert first.returncode == 0, first.stderr
    assert "wake-snoozed: 0" in first.stdout
    assert "expire-sessions: 0" in first.stdout
    assert "pageview-retention: 0" in first.stdout
    assert "email-outbox: 0" in first.stdout
    # Ran a moment ago: not due again yet, so only the outbox (always due) looks.
    second = hub(tmp_path, "worker", "--once")
    assert second.returncode == 0 and second.stdout == "email-outbox: 0\n"


def test_serve_help_offers_leaving_jobs_to_workers(tmp_path):
    result = hub(tmp_path, "serve", "--help")
    assert result.returncode == 0
    assert "--no-jobs" in result.stdout


def test_cleanup_removes_page_views_past_the_retention_period(tmp_path):
    import asyncio
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from storage.db import Database
    from storage.tables import page_views

    assert hub(tmp_path, "migrate").returncode == 0
    assert hub(tmp_path, "bootstrap", extra_env={"HUB_DEMO": "true"}).returncode == 0

    async def seed() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hub.db'}")
        from hub.bus import EventBus
        from hub.inboxes import InboxService
        from hub.models import Inbox  # noqa: F401 - the demo inbox exists
        from hub.visitors import VisitorService

        inbox = (await InboxService(db).list())[0]
        visitor = await VisitorService(db, EventBus()).create(inbox)
        now = datetime.now(UTC)
        async with db.write() as conn:
            for days in (100, 10):
                await conn.execute(
                    page_views.insert().values(
                        visitor_id=visitor.id,
                        contact_id=visitor.contact_id,
                        inbox_id=inbox.id,
                        visit=1,
                        url=f"https://shop.test/{days}",
                        created_at=now - timedelta(days=days),
                    )
                )
        await db.dispose()

    async def left() -> list[str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hub.db'}")
        async with db.read() as conn:
            urls = (await conn.execute(sa.select(page_views.c.url))).scalars().all()
        await db.dispose()
        return list(urls)

    asyncio.run(seed())
    result = hub(tmp_path, "cleanup", extra_env={"HUB_PAGEVIEW_RETENTION_DAYS": "30"})
    assert result.returncode == 0, result.stderr
    assert "Removed 1 page views older than 30 days" in result.stdout
    assert asyncio.run(left()) == ["https://shop.test/10"]


@pytest.mark.parametrize(
    ("command", "setting", "value", "message"),
    [
        ("serve", "HUB_REDIS_URL", "redis://127.0.0.1:1/0", "Cannot reach the event bus at"),
        (
            "serve",
            "HUB_DATABASE_URL",
            "postgresql+asyncpg://hub:s3cret@127.0.0.1:1/hub",
            "Cannot reach the database at postgresql+asyncpg://hub:***@127.0.0.1:1/hub",
        ),
        (
            "migrate",
            "HUB_DATABASE_URL",
            "postgresql+asyncpg://hub:s3cret@127.0.0.1:1/hub",
            "Cannot reach the database at postgresql+asyncpg://hub:***@127.0.0.1:1/hub",
        ),
    ],
)
def test_an_unreachable_server_stops_with_the_setting_named_and_no_password(
    tmp_path, command, setting, value, message
):
    if setting == "HUB_REDIS_URL":
        assert hub(tmp_path, "migrate").returncode == 0
    result = hub(tmp_path, command, extra_env={setting: value})
    assert result.returncode == 2
    assert message in result.stderr and f"({setting})" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
