"""Per-inbox business hours: a time zone and a weekly schedule, set by admins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from hub.errors import InvalidInput
from hub.events.unit_of_work import store_write
from storage.db import Database
from storage.repositories import inboxes as inbox_rows

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(
    zip(
        DAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
# A day has at most a few opening ranges (morning, afternoon, evening).
MAX_RANGES_PER_DAY = 4
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class BusinessHours:
    inbox_id: int
    timezone: str
    schedule: dict[str, list[tuple[str, str]]]

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (any zone) falls within the schedule in the inbox's time zone."""
        local = at.astimezone(ZoneInfo(self.timezone))
        now = local.time()
        for start, end in self.schedule.get(DAYS[local.weekday()], []):
            if _time(start) <= now < _time(end):
                return True
        return False


def _time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def clean_timezone(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidInput("time zone must be a name such as Europe/Oslo")
    if value not in available_timezones():
        raise InvalidInput(f"unknown time zone {value!r}; use a name such as Europe/Oslo")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {value!r}") from None
    return value


def clean_schedule(value: object) -> dict[str, list[tuple[str, str]]]:
    """{"mon": [["09:00", "17:00"]], …}: HH:MM ranges, start before end, no overlaps."""
    if not isinstance(value, dict):
        raise InvalidInput("schedule must map days (mon…sun) to opening ranges")
    cleaned: dict[str, list[tuple[str, str]]] = {}
    for day, ranges in value.items():
        if day not in DAYS:
            raise InvalidInput(f"unknown day {str(day)[:10]!r}; use mon, tue, … sun")
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            raise InvalidInput(f"{DAY_NAMES[day]} has at most {MAX_RANGES_PER_DAY} ranges")
        day_ranges: list[tuple[str, str]] = []
        for item in ranges:
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise InvalidInput(f"{DAY_NAMES[day]}: a range is [start, end]")
            start, end = item
            if not all(isinstance(t, str) and _HHMM.match(t) for t in (start, end)):
                raise InvalidInput(f"{DAY_NAMES[day]}: times are HH:MM, 00:00 to 23:59")
            if start >= end:
                raise InvalidInput(f"{DAY_NAMES[day]}: {start} must be before {end}")
            day_ranges.append((start, end))
        day_ranges.sort()
        for (_, end), (start, _) in pairwise(day_ranges):
            if start < end:
                raise InvalidInput(f"{DAY_NAMES[day]}: opening ranges overlap")
        if day_ranges:
            cleaned[day] = day_ranges
    return cleaned


class BusinessHoursService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, inbox_id: int) -> BusinessHours | None:
        async with self._db.read() as conn:
            row = await inbox_rows.business_hours_row(conn, inbox_id)
        if row is None:
            return None
        schedule = {day: [tuple(r) for r in ranges] for day, ranges in row.schedule.items()}
        return BusinessHours(row.inbox_id, row.timezone, schedule)

    async def set(self, inbox_id: int, timezone: object, schedule: object) -> BusinessHours:
        zone = clean_timezone(timezone)
        ranges_by_day = {
            day: [list(r) for r in ranges] for day, ranges in clean_schedule(schedule).items()
        }
        async with store_write(self._db) as conn:
            await inbox_rows.set_business_hours(conn, inbox_id, zone, ranges_by_day)
        hours = await self.get(inbox_id)
        assert hours is not None
        return hours

    async def is_open(self, inbox_id: int, at: datetime) -> bool:
        """Inside business hours; an inbox without hours set is always open."""
        hours = await self.get(inbox_id)
        return hours is None or hours.is_open(at)
