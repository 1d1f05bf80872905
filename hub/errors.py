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

Adapters translate these into their protocol's words (an HTTP status, an
`error` frame, an SMTP reply); each carries a machine `code` and a sentence a
person can act on.
"""


class HubError(Exception):
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(HubError):
    code = "not_found"


class Forbidden(HubError):
    code = "forbidden"


class InvalidInput(HubError):
    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the input field at fault, when one is


class TooLarge(InvalidInput):
    code = "too_large"


class RateLimited(HubError):
    code = "rate_limited"


class Unverified(HubError):
    code = "unverified_identity"


class NotMigrated(HubError):
    code = "not_migrated"


class Unavailable(HubError):
    code = "unavailable"


def short_reason(exc: BaseException) -> str:
    """The last line of what went wrong, without a driver's stack of wrappers
    (SQLAlchemy keeps the driver's own exception in `orig`)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[-1] if text else type(original).__name__
