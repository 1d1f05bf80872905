"""Call-detail records from a PBX: Asterisk's `Master.csv`, one row per dial leg.

Three column orders are read, told apart by the file's first row:

- `cdr_csv`, Asterisk's default (no header line): `DEFAULT_COLUMNS`, the last
  two only with `loguniqueid`/`loguserfield`;
- `cdr_custom`'s sample `Master.csv` mapping (no header line): `CUSTOM_COLUMNS`;
- any order, with a header row naming the columns (`linkedid` may be one).

Anything else is refused with a message naming the expected columns.

Asterisk writes one row per leg of a call (each extension a queue rang, a
transfer), all with the call's `uniqueid` (or `linkedid`). `merge_legs` makes
them one `complete` call event, keyed by that id (or, for PBXs that log none,
a digest of the row), so importing the same file twice stores each call once.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.contacts.phones import MAX_EXTENSION_DIGITS
from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.models import CallEvent, Outcome, Step

DEFAULT_COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
)  # fmt: skip
CUSTOM_COLUMNS = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "accountcode", "uniqueid", "userfield", "sequence",
)  # fmt: skip
# The columns a row cannot do without; the others (uniqueid, linkedid, ...) are optional.
REQUIRED = ("src", "dst", "lastapp", "start", "answer", "end", "billsec", "disposition")
DISPOSITIONS = {
    "ANSWERED": Outcome.ANSWERED,
    "NO ANSWER": Outcome.MISSED,
    "BUSY": Outcome.BUSY,
    "FAILED": Outcome.FAILED,
    "CONGESTION": Outcome.FAILED,
}
# Which leg's outcome is the call's: an answered leg wins over one that rang out.
_OUTCOME_RANK = [Outcome.ANSWERED, Outcome.VOICEMAIL, Outcome.MISSED, Outcome.BUSY]
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# `SIP/201-00000a3f` or `PJSIP/alice-0001`: the device that answered.
_CHANNEL_DEVICE = re.compile(r"^[A-Za-z0-9]+/([^-@/]+)")

Layout = Mapping[str, int]
DEFAULT_LAYOUT: Layout = {name: n for n, name in enumerate(DEFAULT_COLUMNS)}
CUSTOM_LAYOUT: Layout = {name: n for n, name in enumerate(CUSTOM_COLUMNS)}
UNKNOWN_ORDER = (
    "the columns are in an order this importer does not know. Expected Asterisk's "
    f"Master.csv ({', '.join(DEFAULT_COLUMNS)}), the cdr_custom default "
    f"({', '.join(CUSTOM_COLUMNS)}), or a header row naming at least {', '.join(REQUIRED)}"
)


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


def _is_time(columns: list[str], at: int) -> bool:
    try:
        return len(columns) > at and _time(columns[at], ZoneInfo("UTC"), "start") is not None
    except InvalidInput:
        return False


def layout_of(first: list[str]) -> tuple[Layout, bool]:
    """The column order of a file from its first row, and whether that row is a header."""
    names = [c.strip().lower() for c in first]
    if all(name in names for name in REQUIRED):
        return {name: n for n, name in enumerate(names) if name}, True
    # cdr_custom's start (column 9) is cdr_csv's lastdata, never a time; its answer
    # (column 10) is cdr_csv's start: so cdr_custom is the one to recognise first.
    if _is_time(first, CUSTOM_LAYOUT["start"]):
        return CUSTOM_LAYOUT, False
    if _is_time(first, DEFAULT_LAYOUT["start"]):
        return DEFAULT_LAYOUT, False
    raise InvalidInput(UNKNOWN_ORDER)


def _is_extension(number: str) -> bool:
    digits = number.strip()
    return digits.isdigit() and len(digits) <= MAX_EXTENSION_DIGITS


def parse_row(columns: list[str], zone: ZoneInfo, layout: Layout = DEFAULT_LAYOUT) -> CallEvent:
    """One leg's row as a `complete` event."""
    needed = max(layout[name] for name in REQUIRED) + 1
    if len(columns) < needed:
        raise InvalidInput(f"expected at least {needed} columns, got {len(columns)}")

    def column(name: str) -> str:
        at = layout.get(name)
        return columns[at].strip() if at is not None and at < len(columns) else ""

    src, dst = column("src"), column("dst")
    started = _time(column("start"), zone, "start")
    if started is None:
        raise InvalidInput("start is empty", "start")
    answered = _time(column("answer"), zone, "answer")
    ended = _time(column("end"), zone, "end")
    billsec = column("billsec")
    if not billsec.isdigit():
        raise InvalidInput("billsec must be a number of seconds", "billsec")
    disposition = column("disposition").upper()
    if disposition not in DISPOSITIONS:
        raise InvalidInput(f"unknown disposition {disposition!r}", "disposition")
    outcome = DISPOSITIONS[disposition]
    if outcome is Outcome.ANSWERED and column("lastapp").lower() == "voicemail":
        outcome = Outcome.VOICEMAIL
    # A call placed from an internal extension goes out; anything else came in.
    direction = Direction.OUT if _is_extension(src) else Direction.IN
    device = _CHANNEL_DEVICE.match(column("dstchannel"))
    external_id = (
        column("linkedid")
        or column("uniqueid")
        or "cdr-" + hashlib.sha256("\x1f".join(columns).encode()).hexdigest()[:40]
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


def merge_legs(legs: list[CallEvent]) -> CallEvent:
    """The legs of one call as one event: answered if any leg was, with that leg's
    agent, answer time and talk time; from the first leg's start to the last one's end."""
    first = min(legs, key=_started)
    answered = [leg for leg in legs if leg.answered_at is not None]
    best = min(answered, key=_answered) if answered else min(legs, key=_rank)
    ends = [leg.at for leg in legs if leg.at is not None]
    return replace(
        first,
        outcome=best.outcome,
        answered_at=best.answered_at,
        answered_by=best.answered_by,
        duration_seconds=best.duration_seconds,
        at=max(ends) if ends else first.at,
    )


def _rank(leg: CallEvent) -> int:
    return _OUTCOME_RANK.index(leg.outcome) if leg.outcome in _OUTCOME_RANK else len(_OUTCOME_RANK)


def _started(leg: CallEvent) -> datetime:
    assert leg.started_at is not None  # parse_row refuses a row without one
    return leg.started_at


def _answered(leg: CallEvent) -> datetime:
    assert leg.answered_at is not None
    return leg.answered_at


def read(path: Path, zone: ZoneInfo) -> Iterator[Row]:
    """Every leg's row of the file, parsed, or with the reason it could not be.

    Raises InvalidInput, before any row, for a file whose column order is unknown."""
    layout: Layout | None = None
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for number, columns in enumerate(csv.reader(handle), start=1):
            if not columns or not any(c.strip() for c in columns):
                continue
            if layout is None:
                layout, header = layout_of(columns)
                if header:
                    continue
            try:
                yield Row(number, parse_row(columns, zone, layout))
            except InvalidInput as exc:
                yield Row(number, None, exc.message)


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
