"""Sealing every stored secret afresh: values stored before sealing existed
(`hub migrate`) and values sealed under a previous key (`hub rotate-secret-key`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.events.unit_of_work import store_write
from hub.sealing import CannotOpen, Sealer
from storage.db import Database
from storage.repositories import sealed as sealed_rows

# Mail passwords have their own sealer and may be `env:NAME` references, which
# are not secrets and stay as they are.
MAIL_COLUMNS = ("smtp_password", "imap_password")


@dataclass
class Resealed:
    count: int = 0
    # "identity_secret of row 3": values no configured key opens, left as they were.
    unreadable: list[str] = field(default_factory=list)


async def reseal(db: Database, sealer: Sealer, mail: Sealer, *, plain_only: bool) -> Resealed:
    """Seal every stored secret under the current key (only unsealed ones if `plain_only`)."""
    done = Resealed()
    for name in sealed_rows.COLUMNS:
        column_sealer = mail if name in MAIL_COLUMNS else sealer
        async with db.read() as conn:
            values = await sealed_rows.stored(conn, name)
        for row_key, old in values:
            if name in MAIL_COLUMNS and not Sealer.is_sealed(old):
                continue  # an env: reference
            if plain_only and Sealer.is_sealed(old):
                continue
            try:
                new = column_sealer.reseal(old)
            except CannotOpen:
                done.unreadable.append(f"{name} of row {row_key}")
                continue
            async with store_write(db) as conn:
                if await sealed_rows.replace(conn, name, row_key, old, new):
                    done.count += 1
    return done
