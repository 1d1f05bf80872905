"""`hub import-calls`: a CDR file into the call log, with a progress bar, idempotent."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from channels.voice import cdr
from hub.core import Hub
from hub.errors import InvalidInput
from hub.voice.models import CallEvent
from hub.voice.phone_lines import PhoneLine

# Redraw the bar at most this often: drawing every row would cost more than importing it.
REDRAW_SECONDS = 0.1
BAR_WIDTH = 30
# Rows stored per transaction: big enough that commits do not dominate, small
# enough that the progress bar moves and a PostgreSQL lock is held briefly.
BATCH_ROWS = 500
# Bad rows reported one by one; beyond this only their count.
MAX_REPORTED_ERRORS = 20


class ProgressBar:
    """`[#####.....] 1200/3000 rows` on a terminal, redrawn in place; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = stream.isatty()
        self._drawn_at = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn_at < REDRAW_SECONDS):
            return
        self._drawn_at = now
        filled = BAR_WIDTH * min(done, self.total) // self.total
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\rImporting calls [{bar}] {done}/{self.total} rows")
        self.stream.flush()

    def close(self, done: int) -> None:
        self.update(done, force=True)
        if self.enabled:
            self.stream.write("\n")


@dataclass
class ImportResult:
    imported: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"Imported {self.imported} calls; {self.already} were already there; "
            f"{len(self.errors)} rows could not be read."
        ]
        lines += self.errors[:MAX_REPORTED_ERRORS]
        if len(self.errors) > MAX_REPORTED_ERRORS:
            lines.append(f"… and {len(self.errors) - MAX_REPORTED_ERRORS} more bad rows")
        return "\n".join(lines)


async def import_file(
    hub: Hub, line: PhoneLine, path: Path, zone: ZoneInfo, stream: TextIO = sys.stderr
) -> ImportResult:
    """Every call of the file stored once, its legs merged (see `cdr.merge_legs`).

    Raises InvalidInput, storing nothing, for a file whose column order is unknown."""
    result = ImportResult()
    # A call's legs may be rows apart (other calls end in between): all are read first.
    legs: dict[str, list[CallEvent]] = {}
    for row in cdr.read(path, zone):
        if row.event is None:
            result.errors.append(f"row {row.line_number}: {row.error}")
        else:
            legs.setdefault(row.event.external_id, []).append(row.event)
    known = await hub.calls.known_external_ids(line.inbox_id)
    bar = ProgressBar(cdr.count_rows(path), stream)
    batch: list[CallEvent] = []
    done = len(result.errors)
    for external_id, call_legs in legs.items():
        done += len(call_legs)
        if external_id in known:
            result.already += 1
        else:
            batch.append(cdr.merge_legs(call_legs))
        if len(batch) >= BATCH_ROWS:
            await _store(hub, line, batch, result)
            bar.update(done)
    await _store(hub, line, batch, result)
    bar.close(done)
    return result


async def _store(hub: Hub, line: PhoneLine, batch: list[CallEvent], result: ImportResult) -> None:
    """One transaction per batch; a batch with a bad row is stored row by row instead."""
    if not batch:
        return
    try:
        recorded = await hub.calls.record_many(line, batch)
    except InvalidInput:
        recorded = []
        for event in batch:
            try:
                recorded += await hub.calls.record_many(line, [event])
            except InvalidInput as exc:
                result.errors.append(f"call {event.external_id}: {exc.message}")
    result.imported += sum(1 for r in recorded if r.changed)
    result.already += sum(1 for r in recorded if not r.changed)
    batch.clear()
