"""hub.records.record_of: a stored row into the hub's record, by field name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hub.models import Channel, Status
from hub.records import record_of


@dataclass(frozen=True)
class Sample:
    id: int
    status: Status
    channel: Channel | None
    tags: tuple[str, ...]
    attributes: dict[str, Any]
    note: str | None = None
    extra: list[int] = field(default_factory=list)


def test_columns_of_the_same_name_fill_the_fields_in_the_fields_types() -> None:
    row = {"id": 7, "status": "open", "channel": "email", "tags": ["a", "b"], "attributes": None}
    assert record_of(Sample, row) == Sample(7, Status.OPEN, Channel.EMAIL, ("a", "b"), {})


def test_nothing_stays_nothing_where_the_field_may_be_none() -> None:
    row = {"id": 1, "status": "resolved", "channel": None, "tags": None, "attributes": {"k": 1}}
    made = record_of(Sample, row)
    assert (made.channel, made.tags, made.attributes) == (None, (), {"k": 1})


def test_given_fields_win_and_missing_columns_keep_their_defaults() -> None:
    row = {"id": 1, "status": "open", "channel": None, "tags": (), "attributes": {}, "junk": 3}
    made = record_of(Sample, row, note="kept", status=Status.PENDING)
    assert (made.note, made.status, made.extra) == ("kept", Status.PENDING, [])


def test_a_column_missing_for_a_field_without_default_is_an_error() -> None:
    with pytest.raises(TypeError):
        record_of(Sample, {"id": 1, "status": "open", "channel": None, "tags": ()})


def test_a_stored_value_outside_an_enum_is_refused() -> None:
    row = {"id": 1, "status": "lost", "channel": None, "tags": (), "attributes": {}}
    with pytest.raises(ValueError):
        record_of(Sample, row)
