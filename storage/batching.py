"""Many callers' small reads or writes in one transaction, each caller answered after it.

Callers `submit` an item and wait. One task takes everything that queued
while its previous transaction ran (at most `max_batch` items), hands the
batch to a function inside one transaction, and answers each caller from
what that function returned. A lone item goes at once; under load (a
reconnect storm: thousands of widgets saying hello after a restart) the
batches grow by themselves, and a thousand small units of work cost a few
transactions instead of a thousand. The task ends when the queue is empty;
the next item starts another.

`GroupCommit` writes (`Database.write`) and answers only after the commit;
`GroupRead` reads (`Database.read`).

Failures:

- The function may answer one item with an exception instead of a result,
  when it can tell without failing a statement (the row it was to update is
  gone): that caller alone gets it; the rest of the batch goes on.
- Anything that fails the transaction itself (a statement, the commit, the
  connection) fails the whole batch: each of its callers gets `StoreUnavailable`,
  naming what was not stored (or read) and why. A write batch is rolled back:
  nothing of it is stored. The next batch is a new transaction.
- A caller that gives up (is cancelled) before its batch is taken is left out
  of it; once taken, its write commits or rolls back with the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.errors import StoreUnavailable, short_reason

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Does a batch's work inside the open transaction: one result (or exception) per item, in order.
Work = Callable[[AsyncConnection, list[T]], Awaitable[Sequence[R | Exception]]]


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class _Batches(Generic[T, R]):
    _failed = "handled"  # "The {what} was not {_failed} …"

    def __init__(self, db: Database, work: Work[T, R], *, what: str, max_batch: int) -> None:
        self._db = db
        self._work = work
        self.what = what
        self.max_batch = max_batch
        self._queue: deque[_Pending[T, R]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def submit(self, item: T) -> R:
        """Queue one item; its result once the transaction holding it has ended well."""
        if self._closed:
            raise StoreUnavailable(f"The hub is stopping; the {self.what} was not {self._failed}.")
        pending: _Pending[T, R] = _Pending(item, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"batches of {self.what}")
        return await pending.future

    async def close(self) -> None:
        """Refuse new items and finish those already queued."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])  # its own failure was logged; not ours to raise
        while self._queue:  # only if the task died: nobody will do these
            self._fail(self._queue.popleft(), "the hub stopped")

    async def _run(self) -> None:
        while batch := self._take_batch():
            try:
                await self._do(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    self._fail(pending, "the hub stopped")
                raise

    def _take_batch(self) -> list[_Pending[T, R]]:
        batch: list[_Pending[T, R]] = []
        while self._queue and len(batch) < self.max_batch:
            pending = self._queue.popleft()
            if not pending.future.done():  # its caller gave up before it was taken
                batch.append(pending)
        return batch

    async def _do(self, batch: list[_Pending[T, R]]) -> None:
        try:
            async with self._transaction() as conn:
                results = await self._work(conn, [pending.item for pending in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:  # the transaction failed: the whole batch did
            log.exception("a batch of %d (%s) failed", len(batch), self.what)
            for pending in batch:
                self._fail(pending, f"the store failed: {short_reason(exc)}", exc)
            return
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    def _fail(self, pending: _Pending[T, R], why: str, cause: BaseException | None = None) -> None:
        if pending.future.done():
            return
        error = StoreUnavailable(f"The {self.what} was not {self._failed} ({why}); try again.")
        error.__cause__ = cause
        pending.future.set_exception(error)


class GroupCommit(_Batches[T, R]):
    """Writes that queue together share one write transaction (group commit)."""

    _failed = "stored"

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._db.write()


class GroupRead(_Batches[T, R]):
    """Reads that queue together share one read transaction."""

    _failed = "read"

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._db.read()
