"""The hub's one-shot commands: migrate, bootstrap (the demo), agents (and their
two-factor login), clean-up, calls, secret-key rotation."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys

from hub.errors import HubError, translated
from hub.models import Role
from hub.settings import Settings, redacted_url

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


def migrate(settings: Settings, args: argparse.Namespace) -> int:
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
    sealed = asyncio.run(_reseal(settings, plain_only=True))
    if sealed:
        print(f"Sealed {sealed} secrets stored in plain text before.")
    return 0


async def _reseal(settings: Settings, *, plain_only: bool) -> int:
    from hub.composition.assemble import start_hub
    from hub.errors import InvalidInput
    from hub.resealing import reseal

    hub = await start_hub(settings)
    try:
        done = await reseal(hub.db, hub.sealer, hub.mail_secrets.sealer, plain_only=plain_only)
    finally:
        await hub.stop()
    if done.unreadable:
        raise InvalidInput(
            f"{len(done.unreadable)} stored secrets open with neither HUB_SECRET_KEY nor "
            f"HUB_PREVIOUS_SECRET_KEYS and were left as they were ({', '.join(done.unreadable)}); "
            f"{done.count} others were sealed under HUB_SECRET_KEY"
        )
    return done.count


async def rotate_secret_key(settings: Settings, args: argparse.Namespace) -> None:
    """Re-seal every stored secret under HUB_SECRET_KEY (docs/deploy.md)."""
    count = await _reseal(settings, plain_only=False)
    print(
        f"Sealed {count} stored secrets under the current HUB_SECRET_KEY; "
        "HUB_PREVIOUS_SECRET_KEYS can now be removed."
    )


async def bootstrap(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub
    from hub.inboxes.service import DEMO_SITE_TOKEN

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
            demo = await hub.inboxes.create_website(
                "Demo shop", demo_origins(settings), site_token=DEMO_SITE_TOKEN
            )
            await hub.campaigns.create(demo.id, DEMO_CAMPAIGN)
        await follow_public_url(hub, settings)
        if settings.demo:
            print(f"Demo shop with the chat widget: {settings.public_url}/demo")
            await _demo_email_inbox(hub, settings)
    finally:
        await hub.stop()


def demo_origins(settings: Settings) -> list[str]:
    """Where the hub itself serves the demo shop from: its public URL, loopback on its port."""
    return sorted(
        {
            settings.public_url,
            f"http://127.0.0.1:{settings.port}",
            f"http://localhost:{settings.port}",
        }
    )


async def follow_public_url(hub, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The demo site's origins follow HUB_PUBLIC_URL and HUB_PORT (run by bootstrap and at
    start-up): those the hub added before are replaced, those an admin added stay."""
    from hub.inboxes.service import DEMO_SITE_TOKEN

    if settings.demo:
        await hub.inboxes.follow_public_url(DEMO_SITE_TOKEN, demo_origins(settings))


async def create_site(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        site = await hub.inboxes.create_website(args.name, args.origin)
    finally:
        await hub.stop()
    print(
        f"Created website inbox {site.id} ({site.name}) for {', '.join(site.allowed_origins)}.\n"
        "Paste this into every page of the site, just before </body>:\n"
        f'    <script src="{settings.public_url}/widget.js" data-site="{site.site_token}" '
        "async></script>\n"
        f"Set its colour, greeting and pre-chat form in the console: "
        f"{settings.public_url}/console/inboxes/{site.id}"
    )


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


def migrate_store(settings: Settings, args: argparse.Namespace) -> int:
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


async def create_agent(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    password = _password(args)
    hub = await start_hub(settings)
    try:
        agent = await hub.agents.create(args.email, args.name, password, Role(args.role))
    finally:
        await hub.stop()
    print(f"Created {agent.role.value} {agent.name} <{agent.email}>.")


async def set_password(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    password = _password(args)
    hub = await start_hub(settings)
    try:
        await hub.agents.set_password(args.email, password)
    finally:
        await hub.stop()
    print(f"Password set for {args.email}.")


async def reset_two_factor(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        await hub.two_factor.reset_by_email(args.email)
    finally:
        await hub.stop()
    print(f"Two-factor login is off for {args.email}; their sessions have ended.")


async def cleanup(settings: Settings, args: argparse.Namespace) -> None:
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


def import_calls(settings: Settings, args: argparse.Namespace) -> int:
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
    return 0


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


async def create_phone_line(settings: Settings, args: argparse.Namespace) -> None:
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


async def close_stale_calls(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub
    from hub.voice.models import STALE_CALL_AFTER

    hub = await start_hub(settings)
    try:
        closed = await hub.calls.close_stale()
    finally:
        await hub.stop()
    print(f"Closed {closed} call(s) with no event for {STALE_CALL_AFTER}.")


async def create_email_inbox(settings: Settings, args: argparse.Namespace) -> None:
    """An email inbox for a support address, with its outgoing server if given."""
    from hub.composition.assemble import start_hub
    from hub.email.inboxes import EmailInboxConfig, MailServer
    from hub.email.models import TlsMode

    smtp = MailServer(args.smtp_host, args.smtp_port, TlsMode(args.smtp_tls), args.smtp_user)
    hub = await start_hub(settings)
    try:
        inbox, token = await hub.email_inboxes.create(
            EmailInboxConfig(
                name=args.name,
                address=args.address,
                display_name=args.display_name,
                smtp=smtp,
                smtp_password_env=args.smtp_password_env,
            )
        )
    finally:
        await hub.stop()
    sending = (
        f"replies go out through {smtp.host}:{smtp.port}"
        if smtp.configured
        else "replies wait in the outbox until it has an outgoing server (set it in the console)"
    )
    print(
        f"Created email inbox {inbox.id} ({inbox.name}) for {inbox.address}; {sending}.\n"
        "Mail reaches it over the hub's SMTP/LMTP port, IMAP, or posted as raw MIME to "
        f"(shown once; keep it secret):\n    {settings.public_url}/email/inbound/{token}"
    )


async def list_inboxes(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        inboxes = await hub.inboxes.everything()
    finally:
        await hub.stop()
    for inbox in inboxes:
        state = "archived" if inbox.archived else ("members only" if inbox.members_only else "")
        print(
            f"{inbox.id:>5}  {inbox.channel.value:<8}  {inbox.name}"
            + (f"  ({state})" if state else "")
        )
    if not inboxes:
        print("No inboxes yet.")


async def archive_inbox(settings: Settings, args: argparse.Namespace) -> None:
    from hub.composition.assemble import start_hub

    hub = await start_hub(settings)
    try:
        inbox = await hub.inboxes.get(args.inbox_id)
        if inbox is None:
            raise HubError(f"no inbox {args.inbox_id} (hub list-inboxes shows them)")
        await hub.inboxes.archive(inbox.id, inbox.channel)
    finally:
        await hub.stop()
    print(f"Archived {inbox.channel.value} inbox {inbox.id} ({inbox.name}); its history stays.")
