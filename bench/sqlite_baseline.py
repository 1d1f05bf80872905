"""Baseline for chat load: the hub's rows for one chat message, written with raw `sqlite3`.

Per message, as the hub writes it: the conversation's counter and preview
updated (RETURNING the new seq) and one row inserted into `messages`, on the
hub's own schema and PRAGMAs (WAL, synchronous=NORMAL, foreign keys on).
Two ways: one transaction per message, and `--batch` messages per
transaction (group commit). Prints one JSON line with rows per second.

Run in its own process, pinned to the hub's core by the caller.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from storage.tables import metadata

_UPDATE = (
    "UPDATE conversations SET last_seq = last_seq + 1, last_in_seq = last_seq + 1, "
    "last_activity_at = ?, preview = ?, status = 'open', snoozed_until = NULL, "
    "resolved_at = NULL WHERE id = ? RETURNING last_seq"
)
_INSERT = (
    "INSERT INTO messages (conversation_id, seq, direction, kind, author_type, author_id, "
    "text, client_id, created_at) VALUES (?, ?, 'in', 'text', 'visitor', NULL, ?, ?, ?)"
)
TEXT = "b:1:1234567890123456789 I have a question about my order"


def _create(path: Path, conversations: int) -> sqlite3.Connection:
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    now = _now()
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO inboxes (id, channel, name, allowed_origins, require_identity, created_at) "
        "VALUES (1, 'webchat', 'Bench', '[]', 0, ?)",
        (now,),
    )
    db.execute("INSERT INTO contacts (id, attributes, created_at) VALUES (1, '{}', ?)", (now,))
    db.execute(
        "INSERT INTO visitors (id, inbox_id, contact_id, created_at, last_seen_at) "
        "VALUES ('v', 1, 1, ?, ?)",
        (now, now),
    )
    db.executemany(
        "INSERT INTO conversations (id, inbox_id, contact_id, visitor_id, status, last_seq, "
        "last_in_seq, visitor_read_seq, created_at, last_activity_at) "
        "VALUES (?, 1, 1, 'v', 'open', 0, 0, 0, ?, ?)",
        [(i, now, now) for i in range(1, conversations + 1)],
    )
    db.execute("COMMIT")
    return db


def _now() -> str:
    return datetime.now(UTC).isoformat(" ")


def rows_per_second(
    db: sqlite3.Connection, conversations: int, batch: int, seconds: float
) -> float:
    written = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(batch):
            conversation = written % conversations + 1
            now = _now()
            seq = db.execute(_UPDATE, (now, TEXT[:140], conversation)).fetchone()[0]
            db.execute(_INSERT, (conversation, seq, TEXT, f"c{batch}-{written}", now))
            written += 1
        db.execute("COMMIT")
    return written / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-sqlite-") as scratch:
        db = _create(Path(scratch) / "raw.db", args.conversations)
        result = {
            "per_commit": rows_per_second(db, args.conversations, 1, args.seconds),
            "batched": rows_per_second(db, args.conversations, args.batch, args.seconds),
            "batch": args.batch,
        }
        db.close()
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
