"""`import_file`: real Asterisk Master.csv files into the call log, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.voice.importer import import_file
from hub.errors import InvalidInput
from hub.voice.models import Outcome
from tests.engines import settings  # noqa: F401 - both engines

LONDON = ZoneInfo("Europe/London")
# Asterisk's cdr_csv order, no header (the default Master.csv).
DEFAULT_ORDER = [
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
]  # fmt: skip
# cdr_custom.conf's sample Master.csv mapping.
CUSTOM_ORDER = [
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start",
    "answer", "end", "duration", "billsec", "disposition", "amaflags", "accountcode",
    "uniqueid", "userfield", "sequence",
]  # fmt: skip
# A file with a header row may have its columns in any order.
HEADER_ORDER = [
    "uniqueid", "linkedid", "start", "answer", "end", "src", "dst", "dstchannel", "lastapp",
    "billsec", "disposition", "duration",
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
        "sequence": "12",
        "linkedid": "",
    } | changes


def master_csv(
    path: Path, rows: list[dict[str, str]], order: list[str] = DEFAULT_ORDER, header: bool = False
) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        if header:
            writer.writerow(order)
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


async def test_the_legs_of_a_queue_call_are_one_answered_call(hub, line, tmp_path):
    # A queue rang 201 (no answer), 202 answered after 20 s and talked 17 s; 203 rang
    # too. Asterisk writes a row per leg, all with the call's uniqueid, another call between.
    legs = [
        cdr(dstchannel="SIP/201-01", answer="", end="2026-07-01 09:00:20", billsec="0",
            disposition="NO ANSWER"),
        cdr(uniqueid="1719820900.9", src="07700900999", start="2026-07-01 09:00:10"),
        cdr(dstchannel="SIP/202-02", answer="2026-07-01 09:00:20", end="2026-07-01 09:00:37",
            billsec="17"),
        cdr(dstchannel="SIP/203-03", answer="", end="2026-07-01 09:00:20", billsec="0",
            disposition="NO ANSWER"),
    ]  # fmt: skip
    path = master_csv(tmp_path / "Master.csv", legs)
    result = await import_file(hub, line, path, LONDON, io.StringIO())
    assert (result.imported, result.already, result.errors) == (2, 0, [])
    call = next(c for c in await hub.calls.list() if c.external_id == "1719820800.7")
    assert (call.outcome, call.answered_by, call.duration_seconds) == (Outcome.ANSWERED, "202", 17)
    assert call.started_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert call.ended_at == datetime(2026, 7, 1, 8, 0, 37, tzinfo=UTC)
    assert not call.call_back
    conversation = await hub.conversations.get(call.conversation_id)
    assert not conversation.call_back

    again = await import_file(hub, line, path, LONDON, io.StringIO())
    assert (again.imported, again.already) == (0, 2)


@pytest.mark.parametrize(
    ("order", "header"),
    [
        (CUSTOM_ORDER, False),
        (HEADER_ORDER, True),
    ],
    ids=["cdr_custom-default", "with-header"],
)
async def test_other_column_orders_are_read(hub, line, tmp_path, order, header):
    rows = [
        cdr(),
        cdr(uniqueid="1719820900.9", linkedid="1719820900.9", src="201", dst="07700900123",
            dstchannel="SIP/trunk-09", billsec="30"),
    ]  # fmt: skip
    path = master_csv(tmp_path / "Master.csv", rows, order, header)
    result = await import_file(hub, line, path, LONDON, io.StringIO())
    assert (result.imported, result.errors) == (2, [])
    inbound = next(c for c in await hub.calls.list() if c.external_id == "1719820800.7")
    assert (inbound.answered_by, inbound.duration_seconds) == ("202", 120)
    assert inbound.started_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    outbound = next(c for c in await hub.calls.list() if c.external_id == "1719820900.9")
    assert (outbound.answered_by, outbound.duration_seconds) == ("201", 30)


async def test_an_unknown_column_order_is_refused_naming_the_expected_columns(hub, line, tmp_path):
    order = ["src", "dst", "billsec", "start", "disposition", "uniqueid"]
    path = master_csv(tmp_path / "Master.csv", [cdr()], order)
    with pytest.raises(InvalidInput) as refused:
        await import_file(hub, line, path, LONDON, io.StringIO())
    assert "accountcode, src, dst, dcontext, clid, channel" in refused.value.message
    assert "cdr_custom" in refused.value.message and "header row" in refused.value.message
    assert await hub.calls.list() == []
