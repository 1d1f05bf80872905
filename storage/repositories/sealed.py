"""The columns that hold sealed secrets (hub/sealing.py), read and rewritten one
by one when they are sealed afresh (`hub migrate`, `hub rotate-secret-key`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import agent_two_factor, email_inboxes, inboxes, voice_lines

# name -> (the row's key column, the secret's column)
COLUMNS: dict[str, tuple[sa.Column, sa.Column]] = {
    "identity_secret": (inboxes.c.id, inboxes.c.identity_secret),
    "provider_auth_token": (voice_lines.c.inbox_id, voice_lines.c.provider_auth_token),
    "smtp_password": (email_inboxes.c.inbox_id, email_inboxes.c.smtp_password),
    "imap_password": (email_inboxes.c.inbox_id, email_inboxes.c.imap_password),
    "two_factor_secret": (agent_two_factor.c.agent_id, agent_two_factor.c.secret),
}


async def stored(conn: AsyncConnection, name: str) -> list[tuple[int, str]]:
    """(row key, stored value) of every row with a value in column `name`."""
    key, column = COLUMNS[name]
    rows = await conn.execute(sa.select(key, column).where(column.is_not(None)).order_by(key))
    return [(row[0], row[1]) for row in rows]


async def replace(conn: AsyncConnection, name: str, row_key: int, old: str, new: str) -> bool:
    """Store `new` in place of `old` (only if the value is still `old`); whether it was."""
    key, column = COLUMNS[name]
    table = column.table
    done = await conn.execute(
        sa.update(table).where(key == row_key).where(column == old).values({column.name: new})
    )
    return bool(done.rowcount)
