"""Voice inboxes: a phone line's numbers, region, CTI token and provider secret.

The CTI token authenticates the phone system's webhook; only its SHA-256 is
stored, so the token is shown once (at creation or rotation) and a copy of the
database does not let anyone post call events. The provider's auth token must
be kept as is because request signatures are computed with it; it is never
shown again after it has been entered, and it is stored sealed (hub/sealing.py).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from hub.contacts import phones
from hub.errors import InvalidInput, NotFound
from hub.events.unit_of_work import store_write
from hub.inboxes.service import inbox_from_row
from hub.models import Channel, Inbox, utcnow
from hub.sealing import Sealer
from hub.settings import Secret
from hub.text import clean_optional, clean_text
from storage.db import Database
from storage.repositories import inboxes as inbox_rows

# 24 random bytes: unguessable, and short enough for a URL path segment.
CTI_TOKEN_BYTES = 24
MAX_NUMBERS = 20
MAX_BLOCKED = 500
MAX_PROVIDER_TOKEN_CHARS = 128


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PhoneLine:
    inbox: Inbox
    phone_numbers: tuple[str, ...]
    default_region: str
    provider_auth_token: Secret | None
    blocked_numbers: tuple[str, ...]

    @property
    def inbox_id(self) -> int:
        return self.inbox.id

    @property
    def name(self) -> str:
        return self.inbox.name

    @property
    def provider_token_hint(self) -> str | None:
        """The last four characters, so an admin can tell which token is set."""
        if self.provider_auth_token is None:
            return None
        return "…" + self.provider_auth_token.get()[-4:]


def _numbers(values: list[str], region: str, field: str, limit: int) -> list[str]:
    cleaned = []
    for value in values:
        if value.strip():
            number = phones.normalize(value, region, field)
            if not phones.is_public(number):
                raise InvalidInput(f"{field}: {value!r} is not a full phone number")
            cleaned.append(number)
    if len(cleaned) > limit:
        raise InvalidInput(f"{field}: at most {limit} numbers")
    return sorted(set(cleaned))


class PhoneLineService:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    async def create(
        self,
        name: str,
        phone_numbers: list[str],
        default_region: str,
        provider_auth_token: str | None = None,
    ) -> tuple[PhoneLine, str]:
        """A new voice inbox and its CTI token (returned once, stored only hashed)."""
        region = phones.clean_region(default_region)
        numbers = _numbers(phone_numbers, region, "phone_numbers", MAX_NUMBERS)
        if not numbers:
            raise InvalidInput("phone_numbers: a phone line needs at least one number")
        provider = clean_optional(provider_auth_token, MAX_PROVIDER_TOKEN_CHARS, "provider token")
        token = secrets.token_urlsafe(CTI_TOKEN_BYTES)
        async with store_write(self._db) as conn:
            inbox_id = await inbox_rows.insert(
                conn,
                {
                    "channel": Channel.VOICE.value,
                    "name": clean_text(name, 100, "name"),
                    "allowed_origins": [],
                    "require_identity": False,
                    "created_at": utcnow(),
                },
            )
            await inbox_rows.insert_voice_line(
                conn,
                {
                    "inbox_id": inbox_id,
                    "phone_numbers": numbers,
                    "default_region": region,
                    "cti_token_hash": token_hash(token),
                    "provider_auth_token": self._sealer.seal(provider) if provider else None,
                    "blocked_numbers": [],
                },
            )
        return await self.get(inbox_id), token

    async def get(self, inbox_id: int) -> PhoneLine:
        line = await self.find(inbox_id)
        if line is None:
            raise NotFound(f"no phone line {inbox_id}")
        return line

    async def find(self, inbox_id: int) -> PhoneLine | None:
        lines = await self._select(inbox_id=inbox_id)
        return lines[0] if lines else None

    async def by_cti_token(self, token: str) -> PhoneLine | None:
        # Looked up by hash: the comparison happens on a digest the caller
        # cannot steer byte by byte, so response times leak nothing useful.
        lines = await self._select(cti_token_hash=token_hash(token))
        return lines[0] if lines else None

    async def list(self) -> list[PhoneLine]:
        """Every phone line that is not archived."""
        return [line for line in await self._select() if not line.inbox.archived]

    async def rotate_token(self, inbox_id: int) -> str:
        token = secrets.token_urlsafe(CTI_TOKEN_BYTES)
        await self._update(inbox_id, cti_token_hash=token_hash(token))
        return token

    async def update(
        self,
        inbox_id: int,
        *,
        phone_numbers: builtins.list[str],
        default_region: str,
        blocked_numbers: builtins.list[str],
        provider_auth_token: str | None = None,
    ) -> PhoneLine:
        """Change numbers, region and block list; a non-empty provider token replaces the old."""
        region = phones.clean_region(default_region)
        values = {
            "phone_numbers": _numbers(phone_numbers, region, "phone_numbers", MAX_NUMBERS),
            "default_region": region,
            "blocked_numbers": _numbers(blocked_numbers, region, "blocked_numbers", MAX_BLOCKED),
        }
        if not values["phone_numbers"]:
            raise InvalidInput("phone_numbers: a phone line needs at least one number")
        provider = clean_optional(provider_auth_token, MAX_PROVIDER_TOKEN_CHARS, "provider token")
        if provider:
            values["provider_auth_token"] = self._sealer.seal(provider)
        await self._update(inbox_id, **values)
        return await self.get(inbox_id)

    async def _update(self, inbox_id: int, **values: object) -> None:
        async with store_write(self._db) as conn:
            if not await inbox_rows.update_voice_line(conn, inbox_id, dict(values)):
                raise NotFound(f"no phone line {inbox_id}")

    async def _select(
        self, inbox_id: int | None = None, cti_token_hash: str | None = None
    ) -> builtins.list[PhoneLine]:
        async with self._db.read() as conn:
            rows = await inbox_rows.voice_lines_where(
                conn, inbox_id=inbox_id, cti_token_hash=cti_token_hash
            )
        return [self._line(row) for row in rows]

    def _line(self, row: sa.Row) -> PhoneLine:
        provider = self._sealer.open(row.provider_auth_token)
        return PhoneLine(
            inbox=inbox_from_row(row, self._sealer),
            phone_numbers=tuple(row.phone_numbers or ()),
            default_region=row.default_region,
            provider_auth_token=Secret(provider) if provider else None,
            blocked_numbers=tuple(row.blocked_numbers or ()),
        )
