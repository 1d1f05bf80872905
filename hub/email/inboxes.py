"""Email inboxes: the support address, how mail comes in, how replies go out.

Mail reaches an inbox over SMTP/LMTP (`hub mail`), by IMAP polling, or as raw
MIME posted to `/email/inbound/<token>`; the token is shown once and only its
SHA-256 is stored. SMTP and IMAP passwords are sealed (hub/email/secrets.py).
Each ticket has a reply address `local+<token>@domain` on its inbox's domain.
"""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from hub.email.mail_hosts import clean_folder, clean_host, refuse_private
from hub.email.models import TlsMode
from hub.email.secrets import MailSecrets
from hub.errors import InvalidInput, NotFound
from hub.events.unit_of_work import store_write
from hub.inboxes.service import inbox_from_row
from hub.models import Channel, Inbox, utcnow
from hub.records import record_of
from hub.text import clean_email, clean_optional, clean_text
from hub.voice.phone_lines import token_hash
from storage.db import Database
from storage.repositories import inboxes as inbox_rows

INTAKE_TOKEN_BYTES = 24
MAX_SIGNATURE_CHARS = 2000
MAX_TEMPLATE_CHARS = 5000
DEFAULT_ACK_SUBJECT = "We received your message"
DEFAULT_ACK_TEMPLATE = (
    "Hello {{ name }},\n\n"
    "Thank you for writing to us. Your request has been received and is ticket "
    "#{{ ticket }}; we will answer as soon as we can.\n\n"
    "To add anything, simply reply to this email."
)


@dataclass(frozen=True)
class MailServer:
    """Where to connect: an outgoing SMTP or incoming IMAP server."""

    host: str | None = None
    port: int | None = None
    tls: TlsMode = TlsMode.STARTTLS
    user: str | None = None
    # As stored: "enc:…", "env:NAME" or None (see MailSecrets).
    password_ref: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.host and self.port)


@dataclass(frozen=True)
class EmailInboxConfig:
    """What an admin sets in the console; passwords are given in clear or by
    variable name and sealed before they are stored."""

    name: str
    address: str
    display_name: str | None = None
    smtp: MailServer = MailServer()
    smtp_password: str | None = None  # a new password; None keeps the old one
    smtp_password_env: str | None = None
    smtp_password_remove: bool = False  # forget the stored one (no new one given)
    imap_enabled: bool = False
    imap: MailServer = MailServer(tls=TlsMode.TLS)
    imap_password: str | None = None
    imap_password_env: str | None = None
    imap_password_remove: bool = False
    imap_folder: str = "INBOX"
    signature: str | None = None
    auto_ack: bool = False
    auto_ack_subject: str | None = None
    auto_ack_template: str | None = None


@dataclass(frozen=True)
class EmailInbox:
    inbox: Inbox
    address: str
    display_name: str | None
    smtp: MailServer
    imap_enabled: bool
    imap: MailServer
    imap_folder: str
    imap_uidvalidity: int | None
    imap_last_uid: int
    imap_checked_at: datetime | None
    imap_error: str | None
    signature: str | None
    auto_ack: bool
    auto_ack_subject: str
    auto_ack_template: str

    @property
    def id(self) -> int:
        return self.inbox.id

    @property
    def name(self) -> str:
        return self.inbox.name

    @property
    def local_part(self) -> str:
        return self.address.split("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.split("@", 1)[1]

    def reply_address(self, token: str) -> str:
        """The address a ticket's replies come back to: `support+<token>@domain`."""
        return f"{self.local_part}+{token}@{self.domain}"

    def token_in(self, address: str) -> str | None:
        """The ticket token of a plus-address of this inbox, if `address` is one."""
        local, _, domain = address.lower().partition("@")
        base, plus, token = local.partition("+")
        if plus and domain == self.domain and base == self.local_part and token.isalnum():
            return token
        return None

    def owns(self, address: str) -> bool:
        """True for the inbox's address and its plus-addresses."""
        return address.lower() == self.address or self.token_in(address) is not None


def split_address(address: str) -> tuple[str, str]:
    """`support+tok@shop.example` → (`support@shop.example`, `tok`); no plus → token ""."""
    local, _, domain = address.lower().partition("@")
    base, _, token = local.partition("+")
    return f"{base}@{domain}", token


def _port(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidInput(f"{field} must be a port number (1-65535)", field)
    return value


def _tls(value: object, field: str) -> str:
    try:
        # An enum's lookup takes any value: one that is no member's raises ValueError.
        return TlsMode(value).value  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput(f"{field} must be one of none, starttls, tls", field) from None


class EmailInboxService:
    def __init__(
        self, db: Database, secrets_: MailSecrets, allow_private_hosts: bool = False
    ) -> None:
        """`allow_private_hosts`: HUB_MAIL_ALLOW_PRIVATE_HOSTS (mail_hosts.py)."""
        self._db = db
        self._secrets = secrets_
        self._allow_private_hosts = allow_private_hosts

    async def create(self, config: EmailInboxConfig) -> tuple[EmailInbox, str]:
        """A new email inbox and its HTTP intake token (returned once)."""
        values = await self._checked_values(config)
        token = secrets.token_urlsafe(INTAKE_TOKEN_BYTES)
        async with store_write(self._db) as conn:
            if await inbox_rows.address_taken(conn, values["address"]):
                raise InvalidInput(f"{values['address']} is already an inbox", "address")
            inbox_id = await inbox_rows.insert(
                conn,
                {
                    "channel": Channel.EMAIL.value,
                    "name": clean_text(config.name, 100, "name"),
                    "allowed_origins": [],
                    "require_identity": False,
                    "created_at": utcnow(),
                },
            )
            await inbox_rows.insert_email_inbox(
                conn,
                {
                    "inbox_id": inbox_id,
                    "intake_token_hash": token_hash(token),
                    "imap_last_uid": 0,
                    **values,
                },
            )
        return await self.get(inbox_id), token

    async def update(self, inbox_id: int, config: EmailInboxConfig) -> EmailInbox:
        """Change the settings; a password left empty keeps the stored one."""
        values = await self._checked_values(config)
        async with store_write(self._db) as conn:
            current = await inbox_rows.email_inbox_row(conn, inbox_id)
            if current is None:
                raise NotFound(f"no email inbox {inbox_id}")
            if await inbox_rows.address_taken(conn, values["address"], other_than=inbox_id):
                raise InvalidInput(f"{values['address']} is already an inbox", "address")
            if values["imap_host"] != current.imap_host or values["imap_folder"] != (
                current.imap_folder
            ):
                # Another mailbox: start over (its UIDs mean nothing here).
                values.update(imap_uidvalidity=None, imap_last_uid=0, imap_error=None)
            removed = {
                "smtp_password": config.smtp_password_remove,
                "imap_password": config.imap_password_remove,
            }
            for key in ("smtp_password", "imap_password"):
                if values[key] is None and not removed[key]:
                    values[key] = current._mapping[key]
            await inbox_rows.update_email_inbox(conn, inbox_id, values)
            await inbox_rows.update(conn, inbox_id, {"name": clean_text(config.name, 100, "name")})
        return await self.get(inbox_id)

    async def _checked_values(self, config: EmailInboxConfig) -> dict[str, Any]:
        values = self._values(config)
        if not self._allow_private_hosts:
            for field in ("smtp_host", "imap_host"):
                await refuse_private(values[field], field)
        return values

    def _values(self, config: EmailInboxConfig) -> dict[str, Any]:
        address = clean_email(config.address, "address")
        if address is None:
            raise InvalidInput("an email inbox needs an address", "address")
        if "+" in address.split("@")[0]:
            raise InvalidInput("the address must not contain '+' (used for replies)", "address")
        template = clean_optional(config.auto_ack_template, MAX_TEMPLATE_CHARS, "auto_ack_template")
        if template is not None:
            try:
                SandboxedEnvironment().parse(template)
            except TemplateSyntaxError as exc:
                raise InvalidInput(
                    f"the template has an error on line {exc.lineno}: {exc.message}",
                    "auto_ack_template",
                ) from None
        smtp, imap = config.smtp, config.imap
        if config.imap_enabled and not (imap.host and imap.port and imap.user):
            raise InvalidInput("IMAP polling needs a host, port and user", "imap_host")
        return {
            "address": address,
            "display_name": clean_optional(config.display_name, 100, "display_name"),
            "smtp_host": clean_host(smtp.host, "smtp_host"),
            "smtp_port": _port(smtp.port, "smtp_port"),
            "smtp_tls": _tls(smtp.tls, "smtp_tls"),
            "smtp_user": clean_optional(smtp.user, 254, "smtp_user"),
            "smtp_password": self._secrets.seal(config.smtp_password, config.smtp_password_env),
            "imap_enabled": bool(config.imap_enabled),
            "imap_host": clean_host(imap.host, "imap_host"),
            "imap_port": _port(imap.port, "imap_port"),
            "imap_tls": _tls(imap.tls, "imap_tls"),
            "imap_user": clean_optional(imap.user, 254, "imap_user"),
            "imap_password": self._secrets.seal(config.imap_password, config.imap_password_env),
            "imap_folder": clean_folder(config.imap_folder) or "INBOX",
            "signature": clean_optional(config.signature, MAX_SIGNATURE_CHARS, "signature"),
            "auto_ack": bool(config.auto_ack),
            "auto_ack_subject": clean_optional(config.auto_ack_subject, 200, "auto_ack_subject"),
            "auto_ack_template": template,
        }

    def password(self, server: MailServer) -> str | None:
        """The clear password for logging in to `server` (outbox, IMAP poller)."""
        return self._secrets.reveal(server.password_ref)

    async def get(self, inbox_id: int) -> EmailInbox:
        found = await self.find(inbox_id)
        if found is None:
            raise NotFound(f"no email inbox {inbox_id}")
        return found

    async def find(self, inbox_id: int) -> EmailInbox | None:
        found = await self._select(inbox_id=inbox_id)
        return found[0] if found else None

    async def by_address(self, address: str) -> EmailInbox | None:
        """The inbox receiving mail for `address` (its own or a plus-address)."""
        base, _ = split_address(address)
        found = await self._select(address=base)
        return found[0] if found else None

    async def by_intake_token(self, token: str) -> EmailInbox | None:
        found = await self._select(intake_token_hash=token_hash(token))
        return found[0] if found else None

    async def list(self) -> list[EmailInbox]:
        """Every email inbox that is not archived."""
        return [inbox for inbox in await self._select() if not inbox.inbox.archived]

    async def polled(self) -> builtins.list[EmailInbox]:
        """Inboxes whose mail is fetched by IMAP (an archived one's is not)."""
        return [i for i in await self._select(imap_enabled=True) if not i.inbox.archived]

    async def rotate_intake_token(self, inbox_id: int) -> str:
        token = secrets.token_urlsafe(INTAKE_TOKEN_BYTES)
        await self._update(inbox_id, intake_token_hash=token_hash(token))
        return token

    async def save_imap_position(
        self, inbox_id: int, uidvalidity: int, last_uid: int, error: str | None = None
    ) -> None:
        """Where the poller got to; written only after the mail up to `last_uid` is stored."""
        await self._update(
            inbox_id,
            imap_uidvalidity=uidvalidity,
            imap_last_uid=last_uid,
            imap_checked_at=utcnow(),
            imap_error=error,
        )

    async def record_imap_error(self, inbox_id: int, error: str) -> None:
        await self._update(inbox_id, imap_checked_at=utcnow(), imap_error=error[:500])

    async def _update(self, inbox_id: int, **values: object) -> None:
        async with store_write(self._db) as conn:
            if not await inbox_rows.update_email_inbox(conn, inbox_id, dict(values)):
                raise NotFound(f"no email inbox {inbox_id}")

    async def _select(self, **where: Any) -> builtins.list[EmailInbox]:
        async with self._db.read() as conn:
            rows = await inbox_rows.email_inboxes_where(conn, **where)
        return [_email_inbox(row) for row in rows]


def _email_inbox(row: sa.Row) -> EmailInbox:
    return record_of(
        EmailInbox,
        row,
        inbox=inbox_from_row(row, None),
        smtp=_server(row, "smtp"),
        imap=_server(row, "imap"),
        auto_ack_subject=row.auto_ack_subject or DEFAULT_ACK_SUBJECT,
        auto_ack_template=row.auto_ack_template or DEFAULT_ACK_TEMPLATE,
    )


def _server(row: sa.Row, kind: str) -> MailServer:
    """The `smtp_…` or `imap_…` columns as one server."""
    column = row._mapping
    return MailServer(
        host=column[f"{kind}_host"],
        port=column[f"{kind}_port"],
        tls=TlsMode(column[f"{kind}_tls"]),
        user=column[f"{kind}_user"],
        password_ref=column[f"{kind}_password"],
    )
