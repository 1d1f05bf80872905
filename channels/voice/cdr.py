"""Call-detail records from a PBX: Asterisk's `Master.csv`, one finished call per row.

Columns, in Asterisk's order (no header line):

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp,
    lastdata, start, answer, end, duration, billsec, disposition, amaflags,
    [uniqueid], [userfield]

A row becomes a `complete` call event keyed by `uniqueid` (or, for PBXs that
do not log it, a digest of the row), so importing the same file twice stores
each call once.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.contacts.phones import MAX_EXTENSION_DIGITS
from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.models import CallEvent, Outcome, Step

MIN_COLUMNS = 15
DISPOSITIONS = {
    "ANSWERED": Outcome.ANSWERED,
    "NO ANSWER": Outcome.MISSED,
    "BUSY": Outcome.BUSY,
    "FAILED": Outcome.FAILED,
    "CONGESTION": Outcome.FAILED,
}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# `SIP/201-00000a3f` or `PJSIP/alice-0001`: the device that answered.
_CHANNEL_DEVICE = re.compile(r"^[A-Za-z0-9]+/([^-@/]+)")


@dataclass(frozen=True)
class Row:
    line_number: int
    event: CallEvent | None
    error: str | None = None


def _time(value: str, zone: ZoneInfo, column: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), _TIME_FORMAT).replace(tzinfo=zone)
    except ValueError as exc:
        raise InvalidInput(f"{column} is not a time like 2026-11-20 09:00:00", column) from exc


def _is_extension(number: str) -> bool:
    digits = number.strip()
    return digits.isdigit() and len(digits) <= MAX_EXTENSION_DIGITS


def parse_row(columns: list[str], zone: ZoneInfo) -> CallEvent:
    if len(columns) < MIN_COLUMNS:
        raise InvalidInput(f"expected at least {MIN_COLUMNS} columns, got {len(columns)}")
    src, dst = columns[1].strip(), columns[2].strip()
    started = _time(columns[9], zone, "start")
    if started is None:
        raise InvalidInput("start is empty", "start")
    answered = _time(columns[10], zone, "answer")
    ended = _time(columns[11], zone, "end")
    billsec = columns[13].strip()
    if not billsec.isdigit():
        raise InvalidInput("billsec must be a number of seconds", "billsec")
    disposition = columns[14].strip().upper()
    if disposition not in DISPOSITIONS:
        raise InvalidInput(f"unknown disposition {disposition!r}", "disposition")
    outcome = DISPOSITIONS[disposition]
    if outcome is Outcome.ANSWERED and columns[7].strip().lower() == "voicemail":
        outcome = Outcome.VOICEMAIL
    # A call placed from an internal extension goes out; anything else came in.
    direction = Direction.OUT if _is_extension(src) else Direction.IN
    device = _CHANNEL_DEVICE.match(columns[6].strip())
    uniqueid = columns[16].strip() if len(columns) > 16 else ""
    external_id = (
        uniqueid or "cdr-" + hashlib.sha256("\x1f".join(columns).encode()).hexdigest()[:40]
    )
    answered_at = answered if outcome is Outcome.ANSWERED else None
    return CallEvent(
        step=Step.COMPLETE,
        external_id=external_id[:100],
        source="cdr",
        direction=direction,
        from_number=src or None,
        to_number=dst or None,
        started_at=started,
        answered_at=answered_at,
        at=ended or (started + timedelta(seconds=int(billsec))),
        # Who talked: the extension that answered an inbound call, or the caller's own.
        answered_by=(src if direction is Direction.OUT else device.group(1) if device else None)
        if answered_at
        else None,
        outcome=outcome,
        duration_seconds=int(billsec) if answered_at else 0,
    )


def read(path: Path, zone: ZoneInfo) -> Iterator[Row]:
    """Every row of the file, parsed, or with the reason it could not be."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for number, columns in enumerate(csv.reader(handle), start=1):
            if not columns or not any(c.strip() for c in columns):
                continue
            try:
                yield Row(number, parse_row(columns, zone))
            except InvalidInput as exc:
                yield Row(number, None, exc.message)


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
