"""Inboxes: one per channel instance (websites here; phone lines in hub/voice/phone_lines.py)."""

from __future__ import annotations

import builtins
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import InvalidInput, NotFound, from_the_store
from hub.events.unit_of_work import store_write
from hub.inboxes.widget_settings import WidgetSettings
from hub.models import Channel, Inbox, utcnow
from hub.records import record_of
from hub.sealing import Sealer
from hub.text import clean_text
from storage.batching import GroupRead
from storage.db import Database
from storage.repositories import inboxes as inbox_rows

# The demo shop's site token (`hub bootstrap`, /demo); public by design.
DEMO_SITE_TOKEN = "demo"  # noqa: S105

# Site tokens looked up per read at most: after a restart every widget
# reconnects, thousands of handshakes at once, each naming its site.
SITE_TOKEN_BATCH_MAX = 500
MAX_ORIGINS = 50
MAX_ORIGIN_CHARS = 300
# In a website's stored widget settings: the origins the hub added for itself (the
# demo site's public URL), replaced when that URL changes (`follow_public_url`).
MANAGED_ORIGINS_KEY = "managed_origins"
_LOOPBACK_ORIGIN = re.compile(r"http://(127\.0\.0\.1|localhost)(:\d+)?$")


def normalize_origin(value: str) -> str:
    """`scheme://host[:port]` in lower case, as browsers send in `Origin`."""
    problem = f"{value[:200]!r} is not an origin such as https://shop.example"
    try:  # urlsplit and .port raise ValueError on "[::1", ":99999", "host:port.evil"
        parts = urlsplit(value.strip())
        port_number = parts.port
    except ValueError:
        raise InvalidInput(problem) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(problem)
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{port_number}" if port_number and port_number != default_port else ""
    return f"{parts.scheme}://{host}{port}"


def clean_origins(lines: list[str]) -> list[str]:
    """Allowed origins from what an admin typed (one a line): each normalized, blanks
    and duplicates dropped, at least one; the error names the line at fault."""
    origins: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_ORIGIN_CHARS:
            raise InvalidInput(
                f"line {number}: longer than {MAX_ORIGIN_CHARS} characters", "allowed_origins"
            )
        try:
            origins.add(normalize_origin(line))
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.message}", "allowed_origins") from None
    if not origins:
        raise InvalidInput("a website inbox needs at least one allowed origin", "allowed_origins")
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} allowed origins", "allowed_origins")
    return sorted(origins)


def inbox_from_row(row: sa.Row, sealer: Sealer | None) -> Inbox:
    """The inbox of a row, its identity secret opened by `sealer` (None: an inbox
    kind that has none, such as email)."""
    secret = sealer.open(row.identity_secret) if sealer is not None else None
    return record_of(Inbox, row, identity_secret=secret)


class InboxService:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer
        self._by_site_token = GroupRead(
            db, self._load_by_site_tokens, what="website", max_batch=SITE_TOKEN_BATCH_MAX
        )

    async def _load_by_site_tokens(
        self, conn: AsyncConnection, tokens: builtins.list[str]
    ) -> builtins.list[Inbox | None]:
        rows = await inbox_rows.by_site_tokens(conn, tokens)
        found = {row.site_token: inbox_from_row(row, self._sealer) for row in rows}
        return [found.get(token) for token in tokens]

    async def create_website(
        self,
        name: str,
        allowed_origins: list[str],
        require_identity: bool = False,
        site_token: str | None = None,
        widget: WidgetSettings | None = None,
    ) -> Inbox:
        origins = clean_origins(allowed_origins)
        async with store_write(self._db) as conn:
            inbox_id = await inbox_rows.insert(
                conn,
                {
                    "channel": Channel.WEBSITE.value,
                    "name": clean_text(name, 100, "name"),
                    "site_token": site_token or secrets.token_urlsafe(18),
                    "allowed_origins": origins,
                    "identity_secret": self._sealer.seal(secrets.token_hex(32)),
                    "require_identity": require_identity,
                    "widget_settings": (widget or WidgetSettings()).to_stored(),
                    "created_at": utcnow(),
                },
            )
        return await self._website(inbox_id)

    async def update_website(
        self,
        website_id: int,
        name: str,
        allowed_origins: builtins.list[str],
        require_identity: bool,
        widget: WidgetSettings,
    ) -> Inbox:
        """Save a website's settings from the console (all at once, or nothing)."""
        stored = widget.to_stored()
        current = await self._website(website_id)
        if current.widget_settings and MANAGED_ORIGINS_KEY in current.widget_settings:
            stored[MANAGED_ORIGINS_KEY] = current.widget_settings[MANAGED_ORIGINS_KEY]
        values = {
            "name": clean_text(name, 100, "name"),
            "allowed_origins": clean_origins(allowed_origins),
            "require_identity": require_identity,
            "widget_settings": stored,
        }
        async with store_write(self._db) as conn:
            await self._set_website(conn, website_id, values)
        return await self._website(website_id)

    async def archive(self, inbox_id: int, channel: Channel) -> Inbox:
        """Take an inbox out of the lists; it refuses new chats, mail or calls from now on
        and its conversations stay readable. Archiving twice keeps the first time."""
        async with store_write(self._db) as conn:
            if await inbox_rows.channel_of(conn, inbox_id) != channel.value:
                raise NotFound(f"no {channel.value} inbox {inbox_id}")
            await inbox_rows.archive(conn, inbox_id, utcnow())
        return await self._website(inbox_id)

    async def continue_by_email(self, website_id: int, email_inbox_id: int | None) -> Inbox:
        """Let a website's chats go on by email (from `email_inbox_id`) when visitors leave."""
        async with store_write(self._db) as conn:
            if email_inbox_id is not None:
                if await inbox_rows.channel_of(conn, email_inbox_id) != Channel.EMAIL.value:
                    raise InvalidInput("choose an email inbox", "email_inbox_id")
            await self._set_website(conn, website_id, {"email_inbox_id": email_inbox_id})
        return await self._website(website_id)

    async def require_identity(self, website_id: int, required: bool) -> Inbox:
        """Refuse (or allow) identity claims without a valid hash on this website."""
        async with store_write(self._db) as conn:
            await self._set_website(conn, website_id, {"require_identity": required})
        return await self._website(website_id)

    @staticmethod
    async def _set_website(conn: AsyncConnection, website_id: int, values: dict[str, Any]) -> None:
        if not await inbox_rows.update(conn, website_id, values, Channel.WEBSITE.value):
            raise InvalidInput(f"no website inbox {website_id}")

    async def _website(self, website_id: int) -> Inbox:
        inbox = await self.get(website_id)
        if inbox is None:
            raise NotFound(f"no inbox {website_id}")
        return inbox

    async def get(self, inbox_id: int) -> Inbox | None:
        async with self._db.read() as conn:
            row = await inbox_rows.row(conn, inbox_id)
        return inbox_from_row(row, self._sealer) if row else None

    async def by_site_token(self, site_token: str) -> Inbox | None:
        """The website of a widget's site token, read afresh for every handshake (its
        allowed origins may have changed), in one query with those arriving together."""
        return await from_the_store(self._by_site_token.submit(site_token))

    async def list(self) -> list[Inbox]:
        """Every inbox that is not archived."""
        return [inbox for inbox in await self.everything() if not inbox.archived]

    async def everything(self) -> builtins.list[Inbox]:
        """Every inbox, archived ones too (`hub list-inboxes`)."""
        async with self._db.read() as conn:
            rows = await inbox_rows.all_rows(conn)
        return [inbox_from_row(row, self._sealer) for row in rows]

    async def set_allowed_origins(
        self, inbox_id: int, allowed_origins: builtins.list[str]
    ) -> Inbox:
        origins = clean_origins(allowed_origins)
        async with store_write(self._db) as conn:
            await inbox_rows.update(conn, inbox_id, {"allowed_origins": origins})
        inbox = await self.get(inbox_id)
        if inbox is None:
            raise InvalidInput(f"no inbox {inbox_id}")
        return inbox

    async def follow_public_url(self, site_token: str, managed: builtins.list[str]) -> Inbox | None:
        """Give the website of `site_token` the origins the hub itself serves from
        (`managed`: its public URL, loopback on its port) in place of the ones it
        added on an earlier start; the origins an admin added stay."""
        inbox = await self.by_site_token(site_token)
        if inbox is None:
            return None
        stored = dict(inbox.widget_settings or {})
        if MANAGED_ORIGINS_KEY in stored:
            earlier = set(stored[MANAGED_ORIGINS_KEY] or ())
        else:  # made before the hub kept track: its loopback origins were the hub's own
            earlier = {o for o in inbox.allowed_origins if _LOOPBACK_ORIGIN.match(o)}
        new = clean_origins(managed)
        origins = sorted((set(inbox.allowed_origins) - earlier) | set(new))
        stored[MANAGED_ORIGINS_KEY] = new
        async with store_write(self._db) as conn:
            await inbox_rows.update(
                conn, inbox.id, {"allowed_origins": origins, "widget_settings": stored}
            )
        return await self._website(inbox.id)
