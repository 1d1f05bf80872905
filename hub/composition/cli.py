"""The `hub` command line: serve, mail, worker, migrate, bootstrap, agents, clean-up, calls."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import sys

from hub.errors import HubError, translated
from hub.models import Role
from hub.settings import Settings, SettingsError, redacted_url

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_SUPPORT_ADDRESS = "support@demo-shop.test"
# Shown on the demo shop's pricing page after 20 seconds while an agent is online.
DEMO_CAMPAIGN = {
    "name": "Membership help",
    "message": "Comparing memberships? Ask me anything, I'm happy to help you choose.",
    "sender_name": "Acme Outdoor team",
    "url_match": "prefix",
    "url_pattern": "/demo/pricing",
    "min_seconds": 20,
    "agents_online_only": True,
}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from channels.webchat.protocol import WS_MAX_SIZE
    from channels.websocket.protocol import HubWebSocketProtocol
    from hub.composition.app import create_app
    from hub.composition.assemble import start_hub

    async def check() -> None:
        hub = await start_hub(settings)
        await hub.stop()
        if not args.no_mail:
            from channels.email.smtp_server import tls_context

            tls_context(settings.mail)  # a certificate that does not load stops here

    asyncio.run(check())  # refuse to start on an unmigrated database, with the reason
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    print(f"Contact hub on http://{host}:{port}/  (console /console/, demo page /demo)")
    uvicorn.run(
        create_app(
            settings,
            run_jobs=not args.no_jobs,
            run_mail=not args.no_mail,
            tune_gc=True,
        ),
        host=host,
        port=port,
        ws=HubWebSocketProtocol,
        ws_max_size=WS_MAX_SIZE,
        proxy_headers=True,
        log_level=args.log_level,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from hub.composition.assemble import start_hub
    from hub.composition.worker import hub_jobs, run_background, run_once

    async def run() -> None:
        hub = await start_hub(settings)
        try:
            if args.once:
                results = await run_once(hub)
                for name in sorted(results):
                    print(f"{name}: {results[name]}")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            jobs = len(hub_jobs(hub))
            print(
                f"Worker running {jobs} jobs, the email outbox and IMAP polling; Ctrl-C stops it."
            )
            await run_background(hub, stop)
        finally:
            await hub.stop()

    asyncio.run(run())
    return 0


def _mail(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from channels.email.smtp_server import start_mail_server
    from hub.composition.assemble import start_hub

    async def run() -> None:
        hub = await start_hub(settings)
        try:
            listener = await start_mail_server(hub, host=args.host, port=args.port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            print(f"Inbound mail: {listener.describe()}; Ctrl-C stops it.", flush=True)
            await stop.wait()
            print("Stopping: finishing the messages being stored.", flush=True)
            await listener.close()
        finally:
            await hub.stop()

    asyncio.run(run())
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from hub.errors import Unavailable
    from storage.migrate import head_revision, upgrade

    try:
        upgrade(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        raise Unavailable(
            f"Cannot reach the database at {redacted_url(settings.database_url)} "
            f"(HUB_DATABASE_URL): {str(getattr(exc, 'orig', None) or exc).splitlines()[-1]}"
        ) from exc
    print(f"Database is at revision {head_revision()}.")
    return 0


async def _bootstrap(settings: Settings) -> None:
    from channels.webchat.routes import DEMO_SITE_TOKEN
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        if await hub.agents.count_admins() == 0:
            password = secrets.token_urlsafe(12)
            await hub.agents.create(DEMO_ADMIN_EMAIL, "Admin", password, Role.ADMIN)
            print(
                "Created the first admin. Log in at "
                f"{settings.public_url}/console/ with\n"
                f"    email:    {DEMO_ADMIN_EMAIL}\n    password: {password}\n"
                "(shown once; `hub set-password EMAIL` sets a new one)"
            )
        else:
            print(
                f"Log in at {settings.public_url}/console/ "
                "(forgot the password? `hub set-password EMAIL`)."
            )
        if settings.demo and await hub.inboxes.by_site_token(DEMO_SITE_TOKEN) is None:
            origins = {
                settings.public_url,
                f"http://127.0.0.1:{settings.port}",
                f"http://localhost:{settings.port}",
            }
            demo = await hub.inboxes.create_website(
                "Demo shop", sorted(origins), site_token=DEMO_SITE_TOKEN
            )
            await hub.campaigns.create(demo.id, DEMO_CAMPAIGN)
        if settings.demo:
            print(f"Demo shop with the chat widget: {settings.public_url}/demo")
            await _demo_email_inbox(hub, settings)
    finally:
        await hub.stop()


async def _demo_email_inbox(hub, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """A support address to try email with; replies wait in the outbox until an
    admin sets an outgoing SMTP server for it in the console."""
    from hub.email.inboxes import EmailInboxConfig

    if await hub.email_inboxes.by_address(DEMO_SUPPORT_ADDRESS) is None:
        await hub.email_inboxes.create(
            EmailInboxConfig(
                name="Demo support", address=DEMO_SUPPORT_ADDRESS, display_name="Demo shop support"
            )
        )
    mail = settings.mail
    print(
        f"Demo email inbox: mail to {DEMO_SUPPORT_ADDRESS} over SMTP at {mail.host}:{mail.port} "
        "becomes a ticket, e.g.\n"
        "    printf 'From: you@example.com\\nSubject: Hello\\n\\nWhere is my order?\\n' "
        f"| curl -sS smtp://{mail.host}:{mail.port} --mail-from you@example.com "
        f"--mail-rcpt {DEMO_SUPPORT_ADDRESS} -T -"
    )


def _migrate_store(settings: Settings, args: argparse.Namespace) -> int:
    from storage.copy import copy_store

    source = args.source or settings.database_url
    if source == args.target:
        raise HubError("source and target are the same database")

    def progress(table: str, done: int, total: int) -> None:
        width = 30
        filled = width if total == 0 else width * done // total
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        print(f"\r  {table:<16} [{bar}] {done:>8,}/{total:,}", end=end, file=sys.stderr, flush=True)

    print(f"Copying {redacted_url(source)} -> {redacted_url(args.target)}", file=sys.stderr)
    with translated():
        counts = asyncio.run(copy_store(source, args.target, progress))
    print(f"{'table':<16} {'source':>10} {'target':>10}")
    for count in counts:
        mark = "" if count.matches else "   MISMATCH"
        print(f"{count.table:<16} {count.source:>10,} {count.target:>10,}{mark}")
    if not all(count.matches for count in counts):
        print("hub: row counts differ; do not switch HUB_DATABASE_URL yet", file=sys.stderr)
        return 1
    print(f"All rows copied. Set HUB_DATABASE_URL={redacted_url(args.target)} and restart.")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise HubError(f"the password variable {args.password_env} is empty")
        return value
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise HubError("the two passwords differ")
    return first


async def _create_agent(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    password = _password(args)
    hub = await start_hub(settings)
    try:
        agent = await hub.agents.create(args.email, args.name, password, Role(args.role))
    finally:
        await hub.stop()
    print(f"Created {agent.role.value} {agent.name} <{agent.email}>.")


async def _set_password(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    password = _password(args)
    hub = await start_hub(settings)
    try:
        await hub.agents.set_password(args.email, password)
    finally:
        await hub.stop()
    print(f"Password set for {args.email}.")


async def _cleanup(settings: Settings) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        removed = await hub.tracking.cleanup()
    finally:
        await hub.stop()
    print(
        f"Removed {removed} page views older than {settings.pageview_retention_days} days "
        "(HUB_PAGEVIEW_RETENTION_DAYS)."
    )


def _import_calls(settings: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    path = Path(args.file)
    if not path.is_file():
        raise HubError(f"no such file: {path}")
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HubError(f"unknown time zone {args.timezone!r} (try Europe/London)") from exc
    asyncio.run(_run_import(settings, args.inbox, path, zone))


async def _run_import(settings: Settings, inbox_id: int | None, path, zone) -> None:  # type: ignore[no-untyped-def]
    from channels.voice.importer import import_file
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        line = await _phone_line(hub, inbox_id)
        result = await import_file(hub, line, path, zone)
    finally:
        await hub.stop()
    print(result.report())


async def _create_phone_line(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        line, token = await hub.phone_lines.create(
            args.name,
            args.number,
            args.region,
            provider_auth_token=os.environ.get(args.provider_token_env or "") or None,
        )
    finally:
        await hub.stop()
    print(
        f"Created phone line {line.inbox_id} ({line.name}).\n"
        f"CTI webhook URL (shown once; keep it secret):\n"
        f"    {settings.public_url}/voice/cti/{token}\n"
        f"Provider status callback URL:\n"
        f"    {settings.public_url}/voice/provider/{line.inbox_id}"
    )


async def _phone_line(hub, inbox_id: int | None):  # type: ignore[no-untyped-def]
    lines = await hub.phone_lines.list()
    if inbox_id is not None:
        return await hub.phone_lines.get(inbox_id)
    if len(lines) != 1:
        names = ", ".join(f"{line.inbox_id} ({line.name})" for line in lines) or "none yet"
        raise HubError(f"say which phone line with --inbox ID; phone lines: {names}")
    return lines[0]


async def _close_stale_calls(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub
    from hub.voice.models import STALE_CALL_AFTER

    hub = await start_hub(settings)
    try:
        closed = await hub.calls.close_stale()
    finally:
        await hub.stop()
    print(f"Closed {closed} call(s) with no event for {STALE_CALL_AFTER}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description="Omnichannel contact hub with live chat. Settings come from HUB_* "
        "environment variables or a .env file (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server (console, widget, websockets)")
    serve.add_argument("--host", help="address to bind (default HUB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default HUB_PORT or 8000)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--no-jobs",
        action="store_true",
        help="leave background jobs to `hub worker` processes (several nodes)",
    )
    serve.add_argument(
        "--no-mail",
        action="store_true",
        help="leave inbound mail (SMTP/LMTP on HUB_MAIL_PORT) to a `hub mail` process",
    )
    mail = commands.add_parser(
        "mail",
        help="run the inbound mail server alone (SMTP or LMTP, per HUB_MAIL_PROTOCOL)",
        description="Receive mail for the email inboxes over SMTP (or LMTP behind an MTA "
        "such as Postfix) and store it as tickets. Refuses unknown recipients at RCPT and "
        "answers 250 only once a message is stored. SIGINT or SIGTERM stops it after the "
        "messages being stored are done. See docs/email.md.",
    )
    mail.add_argument("--host", help="address to bind (default HUB_MAIL_HOST or 127.0.0.1)")
    mail.add_argument(
        "--port", type=int, help="port (default HUB_MAIL_PORT or 2525; 0 picks a free one)"
    )
    commands.add_parser("migrate", help="create or upgrade the database schema")
    worker = commands.add_parser(
        "worker",
        help="run background jobs, the email outbox and IMAP polling; safe on several machines",
    )
    worker.add_argument(
        "--once",
        action="store_true",
        help="run the due jobs, send the due mail, poll IMAP once, and exit",
    )
    move = commands.add_parser(
        "migrate-store",
        help="copy every row into another (empty) database, e.g. SQLite to PostgreSQL",
    )
    move.add_argument("target", help="target URL, e.g. postgresql+asyncpg://hub@db/hub")
    move.add_argument("--from", dest="source", help="source URL (default HUB_DATABASE_URL)")
    commands.add_parser(
        "cleanup", help="delete page views older than HUB_PAGEVIEW_RETENTION_DAYS (default 90)"
    )
    commands.add_parser(
        "bootstrap",
        help="create the first admin (printing its password), the demo site and demo email inbox",
    )
    calls = commands.add_parser(
        "import-calls",
        help="import call-detail records (Asterisk Master.csv) into the call log",
        description="Import call-detail records exported by a PBX, in Asterisk's Master.csv "
        "column order, into a phone line's call log. Running it again on the same file "
        "imports nothing twice. Rows that cannot be read are reported and skipped.",
    )
    calls.add_argument("file", help="the CSV file (Master.csv)")
    calls.add_argument(
        "--inbox", type=int, help="the phone line's inbox id (needed if there are several)"
    )
    calls.add_argument(
        "--timezone", default="UTC", help="the PBX's time zone for its times (default UTC)"
    )
    line = commands.add_parser(
        "create-phone-line", help="add a voice inbox and print its CTI webhook URL (once)"
    )
    line.add_argument("name", help="shown to agents, e.g. Support line")
    line.add_argument(
        "--number", action="append", required=True, help="the line's phone number (repeatable)"
    )
    line.add_argument("--region", default="US", help="default region for national numbers")
    line.add_argument(
        "--provider-token-env",
        metavar="VAR",
        help="read the voice provider's auth token (for signatures) from this variable",
    )
    commands.add_parser(
        "close-stale-calls",
        help="close calls whose hangup never came (the background jobs do it every 5 minutes)",
    )
    for name, helptext in (
        ("create-agent", "add an agent or admin"),
        ("set-password", "set an agent's password"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("email")
        if name == "create-agent":
            sub.add_argument("--name", required=True, help="display name shown to visitors")
            sub.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
        sub.add_argument(
            "--password-env",
            metavar="VAR",
            help="read the password from this environment variable instead of prompting",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.load()
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings, args)
        if args.command == "worker":
            return _worker(settings, args)
        if args.command == "mail":
            return _mail(settings, args)
        if args.command == "migrate-store":
            return _migrate_store(settings, args)
        if args.command == "bootstrap":
            asyncio.run(_bootstrap(settings))
        elif args.command == "create-agent":
            asyncio.run(_create_agent(settings, args))
        elif args.command == "set-password":
            asyncio.run(_set_password(settings, args))
        elif args.command == "cleanup":
            asyncio.run(_cleanup(settings))
        elif args.command == "import-calls":
            _import_calls(settings, args)
        elif args.command == "create-phone-line":
            asyncio.run(_create_phone_line(settings, args))
        elif args.command == "close-stale-calls":
            asyncio.run(_close_stale_calls(settings, args))
        return 0
    except (SettingsError, HubError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
