"""Exceptions raised by the store, below the hub (storage imports nothing of the hub).

    StoreError
    ├── StoreUnavailable  a batch's transaction failed, or the store is stopping
    ├── NotMigrated       the schema is not at the current revision
    └── CopyError         `hub migrate-store` cannot copy into the target

The hub translates them into its own errors in one place (`hub.errors.from_store`).
"""


class StoreError(Exception):
    """Anything the store refuses or cannot do; `message` is a sentence a person can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailable(StoreError):
    pass


class NotMigrated(StoreError):
    pass


class CopyError(StoreError):
    pass


def short_reason(exc: BaseException) -> str:
    """The last line of what went wrong, without a driver's stack of wrappers
    (SQLAlchemy keeps the driver's own exception in `orig`)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[-1] if text else type(original).__name__
