"""Reading Asterisk CDR rows, and the import's progress bar."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import pytest

from channels.voice.cdr import parse_row
from channels.voice.importer import BAR_WIDTH, ProgressBar
from hub.errors import InvalidInput
from hub.models import Direction
from hub.voice.models import Outcome, Step

LONDON = ZoneInfo("Europe/London")


def row(**changes: str) -> list[str]:
    columns = {
        "accountcode": "",
        "src": "07700900123",
        "dst": "02079460000",
        "dcontext": "from-trunk",
        "clid": '"Ann" <07700900123>',
        "channel": "SIP/trunk-01",
        "dstchannel": "SIP/202-02",
        "lastapp": "Dial",
        "lastdata": "SIP/202",
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
    return list(columns.values())


def test_an_answered_inbound_row_in_the_pbx_time_zone():
    event = parse_row(row(), LONDON)
    assert event.step is Step.COMPLETE and event.direction is Direction.IN
    assert event.external_id == "1719820800.7"
    assert event.started_at.isoformat() == "2026-07-01T09:00:00+01:00"  # BST
    assert (event.outcome, event.duration_seconds, event.answered_by) == (
        Outcome.ANSWERED,
        120,
        "202",
    )


def test_outbound_voicemail_and_unanswered_rows():
    outbound = parse_row(row(src="201", dst="07700900123"), LONDON)
    assert outbound.direction is Direction.OUT and outbound.answered_by == "201"
    assert parse_row(row(lastapp="VoiceMail"), LONDON).outcome is Outcome.VOICEMAIL
    missed = parse_row(row(disposition="NO ANSWER", answer="", billsec="0"), LONDON)
    assert missed.outcome is Outcome.MISSED and missed.answered_at is None


def test_rows_without_a_uniqueid_get_a_stable_digest():
    short = row()[:16]
    assert parse_row(short, LONDON).external_id == parse_row(list(short), LONDON).external_id
    assert parse_row(short, LONDON).external_id.startswith("cdr-")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"billsec": "x"}, "billsec"),
        ({"disposition": "MAYBE"}, "disposition"),
    ],
)
def test_bad_rows_say_which_column(changes, field):
    with pytest.raises(InvalidInput) as error:
        parse_row(row(**changes), LONDON)
    assert error.value.field == field


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_on_a_terminal_and_stays_quiet_elsewhere():
    terminal = Terminal()
    bar = ProgressBar(200, terminal)
    bar.update(100, force=True)
    bar.close(200)
    drawn = terminal.getvalue()
    half = "#" * (BAR_WIDTH // 2) + "." * (BAR_WIDTH - BAR_WIDTH // 2)
    assert f"\rImporting calls [{half}] 100/200 rows" in drawn
    assert drawn.endswith(f"[{'#' * BAR_WIDTH}] 200/200 rows\n")
    pipe = io.StringIO()
    quiet = ProgressBar(200, pipe)
    quiet.update(100, force=True)
    quiet.close(200)
    assert pipe.getvalue() == ""
