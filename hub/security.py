"""Password hashing, signed visitor tokens and identity verification."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the email is unknown, so that a login attempt
# takes as long whether or not the account exists.
DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class TokenCheck:
    """What a visitor token says: the visitor id when it is valid; `expired` when
    it is ours and for this inbox but older than the maximum age."""

    visitor_id: str | None = None
    expired: bool = False


class ClockSigner(TimestampSigner):
    """itsdangerous' timestamp signer, on the clock its `VisitorTokens` reads."""

    def __init__(self, *args: Any, now: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now())


class VisitorTokens:
    """Signed, timestamped tokens that bind a visitor id to one website inbox and
    expire `max_age_days` after they were issued (every welcome issues a new one,
    so a visitor who keeps coming back keeps their token alive)."""

    def __init__(
        self, secret_key: str, max_age_days: int = 30, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_age = max_age_days * 86400
        # Seconds since the epoch; tests replace it.
        self.clock = clock
        self._serializer = URLSafeTimedSerializer(
            secret_key,
            salt="visitor-token",
            signer=ClockSigner,
            signer_kwargs={"now": lambda: self.clock()},
        )

    def issue(self, visitor_id: str, inbox_id: int) -> str:
        return self._serializer.dumps({"v": visitor_id, "i": inbox_id})

    def verify(self, token: str, inbox_id: int) -> TokenCheck:
        """Valid (with the visitor id), expired, or neither: forged, malformed or
        for another inbox."""
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            # The signature is ours (checked before the age), so is the payload.
            payload = self._payload(exc.payload)
            expired = isinstance(payload, dict) and payload.get("i") == inbox_id
            return TokenCheck(expired=expired)
        except BadSignature:
            return TokenCheck()
        if not isinstance(data, dict) or data.get("i") != inbox_id:
            return TokenCheck()
        visitor_id = data.get("v")
        return TokenCheck(visitor_id if isinstance(visitor_id, str) else None)

    def _payload(self, raw: Any) -> Any:
        try:
            return self._serializer.load_payload(raw) if raw is not None else None
        except BadSignature:  # BadPayload
            return None


def identity_hash(secret: str, user_id: str) -> str:
    """HMAC-SHA256 of the site's user id, hex: what a site computes server-side."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(secret: str, user_id: str, claimed_hash: str | None) -> bool:
    if not claimed_hash:
        return False
    return hmac.compare_digest(identity_hash(secret, user_id), claimed_hash.lower())
