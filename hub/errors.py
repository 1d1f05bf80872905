"""Exceptions raised by the hub's services.

    HubError
    ├── NotFound          the thing does not exist (or is not yours to see)
    ├── Forbidden         you may not do this
    ├── InvalidInput      a field is missing or malformed
    │   └── TooLarge      over a size limit
    ├── RateLimited       too many requests; try later
    ├── Unverified        an identity claim without a valid signature
    ├── NotMigrated       the database schema is not at the current revision
    └── Unavailable       a server the hub needs (database, Redis) cannot be reached

Storage raises its own errors (storage/errors.py); `translated` turns them into
these, the one place where that happens. Adapters translate these into their
protocol's words (an HTTP status, an `error` frame, an SMTP reply); each carries
a machine `code` and a sentence a person can act on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import storage.errors as store

T = TypeVar("T")


class HubError(Exception):
    code = "internal"
    status = 500  # the HTTP status an adapter answers with (channels/http/edge.py)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(HubError):
    code = "not_found"
    status = 404


class Forbidden(HubError):
    code = "forbidden"
    status = 403


class InvalidInput(HubError):
    code = "invalid"
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the input field at fault, when one is


class TooLarge(InvalidInput):
    code = "too_large"
    status = 413


class RateLimited(HubError):
    code = "rate_limited"
    status = 429


class Unverified(HubError):
    code = "unverified_identity"
    status = 403


class NotMigrated(HubError):
    code = "not_migrated"
    status = 503


class Unavailable(HubError):
    code = "unavailable"
    status = 503


def from_store(exc: store.StoreError) -> HubError:
    """The hub's error for one the store raised."""
    kind: type[HubError] = {
        store.StoreUnavailable: Unavailable,
        store.NotMigrated: NotMigrated,
    }.get(type(exc), HubError)
    error = kind(exc.message)
    error.__cause__ = exc
    return error


@contextmanager
def translated() -> Iterator[None]:
    """Run a call into the store, raising the hub's error for any the store raises."""
    try:
        yield
    except store.StoreError as exc:
        raise from_store(exc) from exc


async def from_the_store(pending: Awaitable[T]) -> T:
    """Await a call into the store (a batch's submit), `translated`."""
    with translated():
        return await pending
