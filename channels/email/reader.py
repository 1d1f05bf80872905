"""Reading mail off the event loop: a pre-scan, then a pool of processes with a
time budget per message.

Parsing and sanitizing one hostile message (ten thousand empty MIME parts,
thousands of HTML parts and links) takes up to seconds of CPU in the standard
parser and the HTML cleaner; on the server's one event loop that stalls every
websocket. So:

- `MailReader` reads in worker processes, and the event loop only waits;
- there `prescan` looks at the raw bytes before any parser does: more
  delimiter lines or multipart containers than the parser would ever keep
  parts for means the message is refused at once, before the standard parser
  builds its tree; then `parse_email` parses and sanitizes, under a CPU-time
  budget (a profiling timer interrupts it). A message over its budget is
  reported `TooComplex`; a worker that the timer cannot interrupt is killed
  after a wall-clock backstop (a thread could not be) and replaced.

Processes, not threads: the parser is pure Python and holds the GIL, so a
thread would still take the loop's core for most of the budget. The workers
start from a fork server that has the parser imported once, which keeps each
new worker cheap and never forks the hub's own threads, and they run at a
lower priority than the hub, so that a flood of mail waits for the CPU rather
than the visitors' sockets. The pool starts in a thread (`started`), with the
hub: a fork server's start waits for a new interpreter.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import multiprocessing
import os
import re
import signal
import threading
from dataclasses import dataclass

import pebble

from hub.email.models import InboundEmail

from .bodies import MAX_DEPTH, MAX_PARTS
from .parse import parse_email

# A MIME part costs a delimiter line; the parser keeps MAX_PARTS parts, so a
# message with many more delimiters than that can only be an attack.
MAX_BOUNDARY_LINES = 2 * MAX_PARTS + 10
MAX_MULTIPART_CONTAINERS = MAX_PARTS // 2 + MAX_DEPTH
_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_DELIMITER_LINE = re.compile(rb"^--([^\r\n]{1,200}?)(?:--)?[ \t]*\r?$", re.M)


# The budget is CPU time, so that a busy machine does not refuse ordinary mail;
# a worker stuck where the CPU timer cannot interrupt it (inside C code) is
# killed once this much wall-clock time has passed.
WALL_CLOCK_FACTOR = 2
WALL_CLOCK_SLACK = 3.0


class TooComplex(Exception):
    """A message that cannot be read within the reader's limits; `str()` says why."""


def prescan(raw: bytes) -> str | None:
    """Why `raw` is refused before parsing, or None: too many multipart
    containers, or too many delimiter lines of the boundaries it declares.
    Linear in its size; a line starting "--" that is no delimiter costs nothing."""
    if raw.count(b"\n--") <= MAX_BOUNDARY_LINES:
        return None
    boundaries: set[bytes] = set()
    for match in _BOUNDARY_PARAM.finditer(raw):
        boundaries.add(match.group(1) or match.group(2))
        if len(boundaries) > MAX_MULTIPART_CONTAINERS:
            return f"more than {MAX_MULTIPART_CONTAINERS:,} multipart containers"
    delimiters = 0
    for match in _DELIMITER_LINE.finditer(raw):
        if match.group(1) in boundaries:
            delimiters += 1
            if delimiters > MAX_BOUNDARY_LINES:
                return f"more than {MAX_BOUNDARY_LINES:,} MIME parts"
    return None


def lower_priority() -> None:
    """In a worker, once: yield the CPU to the hub's event loop when both want it."""
    os.nice(10)


class _Overrun(BaseException):
    """Raised in a worker when its CPU budget is spent. A BaseException, so that
    the parser's own `except Exception` (it never raises) does not swallow it."""


def _overrun(signum: int, frame: object) -> None:
    raise _Overrun


def read_message(raw: bytes, cpu_seconds: float) -> InboundEmail | str:
    """In a worker: the parsed message, or why it is refused (the pre-scan, or
    `cpu_seconds` of CPU spent without an end)."""
    reason = prescan(raw)
    if reason is not None:
        return reason
    signal.signal(signal.SIGPROF, _overrun)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        return parse_email(raw)
    except _Overrun:
        return f"not read within {cpu_seconds:g} s (HUB_MAIL_PARSE_SECONDS)"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


@dataclass(frozen=True)
class ReaderLimits:
    """How many processes read at once, and how long one message may take."""

    workers: int = 2
    seconds: float = 5.0
    # Messages waiting for a worker beyond this wait in their sessions, not in
    # the pool's queue, so a flood holds memory in proportion to the workers.
    queued_per_worker: int = 4


class MailReader:
    """`read(raw)` → `InboundEmail`, parsed in a worker process within the budget."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self.limits = limits or ReaderLimits()
        self._pool: pebble.ProcessPool | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()

    def start(self) -> pebble.ProcessPool:
        """The running pool, started if need be: the fork server and every worker
        up before it returns. Blocking (a fork server's start waits for a new
        interpreter), so `read` calls it in a thread, never on the event loop."""
        with self._starting:
            if self._pool is None or not self._pool.active:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                pool = pebble.ProcessPool(
                    max_workers=self.limits.workers, initializer=lower_priority, context=context
                )
                # The pool starts its workers on its first task: give it a cheap one.
                pool.schedule(prescan, args=(b"",)).result()
                self._pool = pool
            return self._pool

    async def started(self) -> pebble.ProcessPool:
        """`start()` off the event loop, unless the pool already runs."""
        pool = self._pool
        if pool is not None and pool.active:
            return pool
        return await asyncio.to_thread(self.start)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.limits.workers * self.limits.queued_per_worker)
            self._slots_loop = loop
        return self._slots

    async def read(self, raw: bytes) -> InboundEmail:
        """The parsed message; `TooComplex` when the pre-scan or the budget refuses it."""
        future_wait = self.limits.seconds * WALL_CLOCK_FACTOR + WALL_CLOCK_SLACK
        async with self._semaphore():
            pool = await self.started()
            future = pool.schedule(
                read_message,
                args=(raw, self.limits.seconds),
                timeout=future_wait,
            )
            try:
                read = await asyncio.wrap_future(future)
            except (TimeoutError, concurrent.futures.TimeoutError):
                # The CPU budget could not stop it (stuck in C code): the worker is killed.
                raise TooComplex(f"still being read after {future_wait:g} s") from None
            except pebble.ProcessExpired as exc:
                # The worker died (out of memory, most likely) on this message.
                raise TooComplex(f"the reading process ended ({exc.exitcode})") from None
            except asyncio.CancelledError:
                future.cancel()
                raise
        if isinstance(read, str):
            raise TooComplex(read)
        return read

    def close(self) -> None:
        """Stop the workers (idempotent); a later `read` starts new ones."""
        with self._starting:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=5)


def default_workers() -> int:
    """Two readers on a small machine, up to four on a larger one."""
    return max(2, min(4, os.cpu_count() or 2))


READER = MailReader(ReaderLimits(workers=default_workers()))
atexit.register(READER.close)
