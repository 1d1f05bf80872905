"""Password hashing, signed visitor tokens and identity verification."""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

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


class VisitorTokens:
    """Signed tokens that bind a visitor id to one website inbox."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="visitor-token")

    def issue(self, visitor_id: str, inbox_id: int) -> str:
        return self._serializer.dumps({"v": visitor_id, "i": inbox_id})

    def verify(self, token: str, inbox_id: int) -> str | None:
        """The visitor id, or None if the token is forged or for another inbox."""
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("i") != inbox_id:
            return None
        visitor_id = data.get("v")
        return visitor_id if isinstance(visitor_id, str) else None


def identity_hash(secret: str, user_id: str) -> str:
    """HMAC-SHA256 of the site's user id, hex: what a site computes server-side."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(secret: str, user_id: str, claimed_hash: str | None) -> bool:
    if not claimed_hash:
        return False
    return hmac.compare_digest(identity_hash(secret, user_id), claimed_hash.lower())
