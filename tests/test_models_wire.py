"""Times on the wire: ISO 8601 in UTC whether the store handed them back with a zone or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.models import iso


@pytest.mark.parametrize(
    "naive",
    [datetime(2026, 11, 22, 18, 0, 0, 123456), datetime(2026, 11, 22, 18, 0, 0)],
)
def test_a_naive_time_is_written_as_utc(naive: datetime) -> None:
    assert iso(naive) == naive.replace(tzinfo=UTC).isoformat()
    assert datetime.fromisoformat(iso(naive) or "") == naive.replace(tzinfo=UTC)


def test_an_aware_time_keeps_its_offset_and_none_stays_none() -> None:
    paris = datetime(2026, 11, 22, 19, 0, tzinfo=timezone(timedelta(hours=1)))
    assert iso(paris) == "2026-11-22T19:00:00+01:00"
    assert iso(datetime(2026, 11, 22, 18, 0, tzinfo=UTC)) == "2026-11-22T18:00:00+00:00"
    assert iso(None) is None
