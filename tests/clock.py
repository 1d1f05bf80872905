"""A clock that tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime

# A Monday, 10:00 UTC.
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
