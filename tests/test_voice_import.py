"""`import_file`: real Asterisk Master.csv files into the call log, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.voice.importer import import_file
from hub.voice.models import Outcome
from tests.engines import settings  # noqa: F401 - both engines

LONDON = ZoneInfo("Europe/London")
# Asterisk's cdr_csv order, no header (the default Master.csv).
DEFAULT_ORDER = [
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
]  # fmt: skip


@pytest.fixture
async def line(hub):  # type: ignore[no-untyped-def]
    created, _token = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")
    return created


def cdr(**changes: str) -> dict[str, str]:
    """One Master.csv row as Asterisk writes it for an answered inbound call (London time)."""
    return {
        "accountcode": "",
        "src": "07700900123",
        "dst": "02079460000",
        "dcontext": "from-trunk",
        "clid": '"Ann" <07700900123>',
        "channel": "SIP/trunk-00000001",
        "dstchannel": "SIP/202-00000002",
        "lastapp": "Dial",
        "lastdata": "SIP/202,30",
        "start": "2026-07-01 09:00:00",
        "answer": "2026-07-01 09:00:05",
        "end": "2026-07-01 09:02:05",
        "duration": "125",
        "billsec": "120",
        "disposition": "ANSWERED",
        "amaflags": "DOCUMENTATION",
        "uniqueid": "1719820800.7",
        "userfield": "",
    } | changes


def master_csv(path: Path, rows: list[dict[str, str]], order: list[str] = DEFAULT_ORDER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        for row in rows:
            writer.writerow([row[column] for column in order])
    return path


async def test_pbx_local_times_are_stored_as_utc_on_every_engine(hub, line, tmp_path):
    path = master_csv(tmp_path / "Master.csv", [cdr()])
    result = await import_file(hub, line, path, LONDON, io.StringIO())
    assert (result.imported, result.errors) == (1, [])
    [call] = await hub.calls.list()
    # 09:00 in London in July is 08:00 UTC (BST).
    assert call.started_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert call.answered_at == datetime(2026, 7, 1, 8, 0, 5, tzinfo=UTC)
    assert call.ended_at == datetime(2026, 7, 1, 8, 2, 5, tzinfo=UTC)
    assert call.outcome is Outcome.ANSWERED and call.duration_seconds == 120
