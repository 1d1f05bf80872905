"""The admins' audit log: every change an admin makes in the console, who and when.

The console records each admin action that succeeded (agent_console/web.py, in
one place for every admin endpoint), with the form's fields except secrets
(passwords, tokens, codes), each cut to `MAX_VALUE_CHARS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.events.unit_of_work import store_write
from hub.models import Agent, utcnow
from hub.records import record_of
from storage.db import Database
from storage.repositories import audit as audit_rows

MAX_VALUE_CHARS = 200
MAX_FIELDS = 30
PAGE = 50
# Field names whose values are never written down.
_SECRET_WORDS = ("password", "secret", "token", "code", "csrf", "key")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    agent_id: int | None
    agent_name: str
    action: str
    target: str
    details: dict[str, Any]


def safe_details(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields worth keeping: secrets named, never shown; long values cut."""
    kept: dict[str, Any] = {}
    for name, value in list(fields.items())[:MAX_FIELDS]:
        key = str(name)[:60]
        if any(word in key.lower() for word in _SECRET_WORDS):
            if key.lower() != "csrf_token":
                kept[key] = "(hidden)"
            continue
        text = value if isinstance(value, str) else repr(value)
        kept[key] = text[:MAX_VALUE_CHARS]
    return kept


class AuditLog:
    page_size = PAGE

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, agent: Agent, action: str, target: str, fields: dict[str, Any]) -> None:
        async with store_write(self._db) as conn:
            await audit_rows.insert(
                conn,
                {
                    "at": utcnow(),
                    "agent_id": agent.id,
                    "agent_name": agent.name,
                    "action": action[:100],
                    "target": target[:300],
                    "details": safe_details(fields),
                },
            )

    async def recent(self, before_id: int | None = None, limit: int = PAGE) -> list[AuditEntry]:
        async with self._db.read() as conn:
            rows = await audit_rows.page(conn, limit, before_id)
        return [record_of(AuditEntry, row) for row in rows]
