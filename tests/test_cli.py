"""The `hub` command line, run as a user would, in a subprocess."""

from __future__ import annotations

import gc
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from hub.composition.app import GC_YOUNG_THRESHOLD, tune_garbage_collector


def hub(tmp_path, *args: str, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
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
        "rotate-secret-key",
        "create-site",
        "create-phone-line",
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
    assert "mail to support@demo-shop.test over SMTP at 127.0.0.1:2525" in first.stdout
    second = hub(tmp_path, "bootstrap")
    assert second.returncode == 0
    assert "password: " not in second.stdout
    assert "support@demo-shop.test" in second.stdout  # still there, not made twice


def _origins(tmp_path, site_token: str) -> list[str]:
    with sqlite3.connect(tmp_path / "data" / "hub.db") as db:
        [(stored,)] = db.execute(
            "SELECT allowed_origins FROM inboxes WHERE site_token = ?", (site_token,)
        )
    return json.loads(stored)  # type: ignore[no-any-return]


def test_create_site_prints_the_snippet_and_refuses_a_bad_origin(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    made = hub(
        tmp_path,
        "create-site",
        "My shop",
        "--origin",
        "https://Shop.example/",
        "--origin",
        "http://localhost:3000",
    )
    assert made.returncode == 0, made.stderr
    token = re.search(
        r'<script src="http://127.0.0.1:8000/widget.js" data-site="([^"]+)" async>', made.stdout
    )
    assert token, made.stdout
    assert _origins(tmp_path, token.group(1)) == ["http://localhost:3000", "https://shop.example"]
    bad = hub(
        tmp_path, "create-site", "Other", "--origin", "https://ok.example", "--origin", "shop"
    )
    assert bad.returncode == 2
    assert "line 2: 'shop' is not an origin" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_demo_sites_origins_follow_the_public_url(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    assert hub(tmp_path, "bootstrap").returncode == 0
    assert _origins(tmp_path, "demo") == ["http://127.0.0.1:8000", "http://localhost:8000"]
    moved = hub(
        tmp_path,
        "bootstrap",
        extra_env={"HUB_PORT": "9001", "HUB_PUBLIC_URL": "https://hub.example"},
    )
    assert moved.returncode == 0, moved.stderr
    assert _origins(tmp_path, "demo") == [
        "http://127.0.0.1:9001",
        "http://localhost:9001",
        "https://hub.example",
    ]


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
        from hub.events.bus import EventBus
        from hub.events.publisher import Publisher
        from hub.events.unit_of_work import Writes
        from hub.inboxes.service import InboxService
        from hub.models import Inbox  # noqa: F401 - the demo inbox exists
        from hub.sealing import Sealer
        from hub.visitors.service import VisitorService

        inbox = (await InboxService(db, Sealer("unused-" + "k" * 32)).list())[0]
        visitor = await VisitorService(Writes(db, Publisher(EventBus()))).create(inbox)
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


# ---- inbound mail ---------------------------------------------------------------------


def test_mail_and_serve_help_tell_where_mail_is_received(tmp_path):
    assert "mail" in hub(tmp_path, "--help").stdout
    serve = hub(tmp_path, "serve", "--help").stdout
    assert "--no-mail" in serve and "hub mail" in serve
    mail = hub(tmp_path, "mail", "--help")
    assert mail.returncode == 0
    assert "HUB_MAIL_PORT" in mail.stdout and "LMTP" in mail.stdout


def _support_inbox(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from hub.composition.assemble import start_hub
    from hub.email.inboxes import EmailInboxConfig
    from hub.settings import Settings

    async def create() -> None:
        started = await start_hub(
            Settings.load(environ={"HUB_DATA_DIR": str(tmp_path / "data")}, env_file="/none")
        )
        try:
            await started.email_inboxes.create(
                EmailInboxConfig(name="Support", address="support@shop.test")
            )
        finally:
            await started.stop()

    asyncio.run(create())


def _stored_subjects(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "hub.db") as db:
        return [row[0] for row in db.execute("SELECT subject FROM email_messages")]


def _send(port: int, subject: str) -> None:
    import smtplib
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@customer.test", "support@shop.test", subject
    msg.set_content("Hello from the command line test.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.sendmail("alice@customer.test", ["support@shop.test"], msg.as_bytes()) == {}


class _Running:
    """A `hub` command left running; its output lines are read in a thread."""

    def __init__(self, tmp_path, *args: str, extra_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
        import queue
        import threading

        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
            "HUB_DATA_DIR": str(tmp_path / "data"),
            **extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, pattern: str) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=60)
            if line is None:
                raise AssertionError("exited:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match

    def stop(self) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return code


def test_hub_mail_receives_a_message_and_stops_cleanly_on_sigterm(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    _support_inbox(tmp_path)
    running = _Running(tmp_path, "mail", "--port", "0", extra_env={})
    try:
        port = int(running.wait_for(r"Inbound mail: SMTP on 127\.0\.0\.1:(\d+)").group(1))
        _send(port, "Sent to hub mail")
        assert _stored_subjects(tmp_path) == ["Sent to hub mail"]  # stored before 250
    finally:
        code = running.stop()
    assert code == 0, running.seen
    assert "Stopping: finishing the messages being stored." in running.seen


def test_hub_serve_receives_mail_in_process_unless_told_not_to(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    _support_inbox(tmp_path)
    env = {"HUB_MAIL_PORT": "0"}
    running = _Running(tmp_path, "serve", "--port", "0", extra_env=env)
    try:
        port = int(running.wait_for(r"Inbound mail: SMTP on 127\.0\.0\.1:(\d+)").group(1))
        _send(port, "Sent to hub serve")
        assert _stored_subjects(tmp_path) == ["Sent to hub serve"]
    finally:
        running.stop()
    quiet = _Running(tmp_path, "serve", "--port", "0", "--no-mail", extra_env=env)
    try:
        quiet.wait_for(r"Uvicorn running on")
    finally:
        quiet.stop()
    assert not any("Inbound mail" in line for line in quiet.seen)


def test_hub_mail_names_the_setting_when_its_port_is_taken(tmp_path):
    import socket

    assert hub(tmp_path, "migrate").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hub(tmp_path, "mail", extra_env={"HUB_MAIL_PORT": str(port)})
    assert result.returncode == 2
    assert f"Cannot listen for mail on 127.0.0.1:{port} (HUB_MAIL_HOST, HUB_MAIL_PORT)" in (
        result.stderr
    )


def test_the_server_process_tunes_the_garbage_collector_for_fewer_pauses():
    """What `hub serve` runs at start-up (tests never do: the suite keeps the defaults)."""
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 20, 20)
        assert gc.get_freeze_count() > before_frozen  # what is alive now is never scanned
    finally:
        gc.unfreeze()
        gc.set_threshold(*before_threshold)


async def test_the_data_directory_and_database_files_are_private(tmp_path):
    from storage.db import Database
    from storage.tables import contacts

    assert hub(tmp_path, "migrate").returncode == 0
    data = tmp_path / "data"
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "hub.db").stat().st_mode & 0o777 == 0o600
    db = Database(f"sqlite+aiosqlite:///{data / 'hub.db'}")
    async with db.write() as conn:
        await conn.execute(contacts.delete())
        assert (data / "hub.db-wal").stat().st_mode & 0o777 == 0o600
        assert (data / "hub.db-shm").stat().st_mode & 0o777 == 0o600
    await db.dispose()


def test_email_inboxes_are_created_listed_and_archived_from_the_command_line(tmp_path):
    assert hub(tmp_path, "migrate").returncode == 0
    made = hub(
        tmp_path,
        "create-email-inbox",
        "Support",
        "support@shop.example",
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        "587",
        "--smtp-password-env",
        "SMTP_PASSWORD",
        extra_env={"HUB_MAIL_ALLOW_PRIVATE_HOSTS": "true"},
    )
    assert made.returncode == 0, made.stderr
    assert "replies go out through 127.0.0.1:587" in made.stdout
    assert re.search(r"http://127.0.0.1:8000/email/inbound/\S{20,}", made.stdout)
    [inbox_id] = re.findall(r"Created email inbox (\d+)", made.stdout)
    again = hub(tmp_path, "create-email-inbox", "Copy", "support@shop.example")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    listed = hub(tmp_path, "list-inboxes")
    assert re.search(rf"^\s*{inbox_id}\s+email\s+Support$", listed.stdout, re.M), listed.stdout
    archived = hub(tmp_path, "archive-inbox", inbox_id)
    assert archived.returncode == 0 and "Archived email inbox" in archived.stdout
    assert "(archived)" in hub(tmp_path, "list-inboxes").stdout
    missing = hub(tmp_path, "archive-inbox", "999")
    assert missing.returncode == 2 and "no inbox 999" in missing.stderr
