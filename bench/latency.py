"""Send times carried inside message text, read back by whoever receives them.

A message text is `b:EVENT:SEND_NS` (monotonic nanoseconds of this process);
senders and receivers live in the generator process, so they share the clock.
Receivers look for the marker in the raw frame without parsing all of it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterator

MARK = '"text":"b:'
# The marker, the event and the send time, found by the regex engine in C (a
# loop over the digits in Python was a quarter of the generator's CPU).
_MARKED = re.compile(re.escape(MARK) + r"(\d+):(\d+)")


def text(event: int, suffix: str = "") -> str:
    return f"b:{event}:{time.monotonic_ns()}{suffix}"


def parse(frame: str) -> tuple[int, int] | None:
    """(event, send time in ns) from a frame carrying a marked text, else None."""
    return next(parse_all(frame), None)


def parse_all(frame: str) -> Iterator[tuple[int, int]]:
    """Every (event, send time in ns) in a frame: a `batch` frame carries several."""
    for found in _MARKED.finditer(frame):
        yield int(found[1]), int(found[2])


class Deliveries:
    """Counts deliveries per event and their latencies; wakes waiters when an event is complete."""

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.counts: dict[int, int] = defaultdict(int)
        self.last_ns: dict[int, int] = {}
        self.frame_length = 0
        self._waiting: dict[int, tuple[int, asyncio.Event]] = {}

    def receive(self, frame: str) -> None:
        now = time.monotonic_ns()
        for event, sent in parse_all(frame):
            self.latencies_ns.append(now - sent)
            self.counts[event] += 1
            self.last_ns[event] = now
            self.frame_length = len(frame)
            waiting = self._waiting.get(event)
            if waiting is not None and self.counts[event] >= waiting[0]:
                waiting[1].set()

    async def wait(self, event: int, expected: int, seconds: float) -> bool:
        """Whether all `expected` deliveries of `event` arrived within `seconds`."""
        if self.counts[event] >= expected:
            return True
        done = asyncio.Event()
        self._waiting[event] = (expected, done)
        try:
            async with asyncio.timeout(seconds):
                await done.wait()
            return True
        except TimeoutError:
            return False
        finally:
            del self._waiting[event]
