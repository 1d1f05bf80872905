"""The `hub` command line: its arguments and help, and which command each runs.

The long-running processes are in processes.py, the one-shot commands in commands.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hub.composition import commands, processes
from hub.errors import HubError
from hub.models import Role
from hub.settings import Settings, SettingsError

# Which function runs each command.
PROCESSES = {"serve": processes.serve, "worker": processes.worker, "mail": processes.mail}
ONE_SHOT = {
    "migrate": commands.migrate,
    "migrate-store": commands.migrate_store,
    "import-calls": commands.import_calls,
}
ASYNC_ONE_SHOT = {
    "bootstrap": commands.bootstrap,
    "create-agent": commands.create_agent,
    "set-password": commands.set_password,
    "cleanup": commands.cleanup,
    "create-phone-line": commands.create_phone_line,
    "create-site": commands.create_site,
    "create-email-inbox": commands.create_email_inbox,
    "list-inboxes": commands.list_inboxes,
    "archive-inbox": commands.archive_inbox,
    "close-stale-calls": commands.close_stale_calls,
    "rotate-secret-key": commands.rotate_secret_key,
    "reset-two-factor": commands.reset_two_factor,
}


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
    site = commands.add_parser(
        "create-site",
        help="add a website inbox and print the script tag to paste into its pages",
        description="Add a website inbox whose widget may connect from the given origins, "
        "and print its script tag. Its colour, greeting, language and pre-chat form are set "
        "in the console (Inboxes).",
    )
    site.add_argument("name", help="shown to agents, e.g. My shop")
    site.add_argument(
        "--origin",
        action="append",
        required=True,
        metavar="URL",
        help="a site origin the widget may connect from, e.g. https://shop.example (repeatable)",
    )
    mail_inbox = commands.add_parser(
        "create-email-inbox",
        help="add an email inbox for a support address and print its intake URL (once)",
        description="Add an email inbox: mail to ADDRESS becomes tickets (over the hub's "
        "SMTP/LMTP port, IMAP or the HTTP intake), answered from the console. Without "
        "--smtp-host replies wait in the outbox until an outgoing server is set in the "
        "console. IMAP polling, the signature and acknowledgements are set in the console.",
    )
    mail_inbox.add_argument("name", help="shown to agents, e.g. Support")
    mail_inbox.add_argument("address", help="the support address, e.g. support@shop.example")
    mail_inbox.add_argument("--display-name", help="the From name on replies")
    mail_inbox.add_argument("--smtp-host", help="outgoing server for replies")
    mail_inbox.add_argument("--smtp-port", type=int, help="its port (587, 465, 25...)")
    mail_inbox.add_argument(
        "--smtp-tls",
        choices=["starttls", "tls", "none"],
        default="starttls",
        help="how it is secured",
    )
    mail_inbox.add_argument("--smtp-user", help="its login")
    mail_inbox.add_argument(
        "--smtp-password-env",
        metavar="VAR",
        help="read its password from this variable at send time",
    )
    commands.add_parser("list-inboxes", help="list every inbox: id, channel, name, archived")
    archive = commands.add_parser(
        "archive-inbox",
        help="archive a website, email inbox or phone line: it takes no new chats, mail "
        "or calls; its history stays",
    )
    archive.add_argument("inbox_id", type=int, help="the inbox's id (see hub list-inboxes)")
    commands.add_parser(
        "close-stale-calls",
        help="close calls whose hangup never came (the background jobs do it every 5 minutes)",
    )
    commands.add_parser(
        "rotate-secret-key",
        help="re-seal every stored secret under HUB_SECRET_KEY (after changing it)",
        description="Seal mail passwords, voice-provider auth tokens, website identity "
        "secrets and agents' two-factor secrets afresh under HUB_SECRET_KEY, opening them "
        "with it or with one of HUB_PREVIOUS_SECRET_KEYS. Afterwards the previous keys can "
        "be removed. Values no key opens are reported and left as they were. See "
        "docs/deploy.md.",
    )
    reset = commands.add_parser(
        "reset-two-factor",
        help="turn an agent's two-factor login off (a locked-out admin); they set it up again",
        description="Turn off two-factor login for the agent with this email address, for "
        "one who lost both their phone and their recovery codes (in the console an admin "
        "can do it for others). Their sessions end; if two-factor is required they set it "
        "up again right after their password. See docs/deploy.md.",
    )
    reset.add_argument("email")
    for name, helptext in (
        ("create-agent", "add an agent, manager or admin"),
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
        if args.command in PROCESSES:
            return PROCESSES[args.command](settings, args)
        if args.command in ONE_SHOT:
            return ONE_SHOT[args.command](settings, args)
        asyncio.run(ASYNC_ONE_SHOT[args.command](settings, args))
        return 0
    except (SettingsError, HubError) as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
