"""Secrets the hub must keep readable (mail passwords, voice-provider auth tokens,
website identity secrets), sealed at rest with keys derived from HUB_SECRET_KEY.

A sealed value is stored as `enc:<Fernet token>`. Values sealed under a key
listed in HUB_PREVIOUS_SECRET_KEYS still open (Fernet's MultiFernet tries the
current key first), and `hub rotate-secret-key` re-seals them all under the
current key, after which the old keys can be dropped (docs/deploy.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "enc:"

# Each kind of secret gets a key of its own, so that one leaked derived key
# opens only that kind; the mail label predates the others and is kept so that
# stored mail passwords still open.
MAIL_PASSWORDS = "hub mail passwords"
STORED_SECRETS = "hub stored secrets"


class CannotOpen(Exception):
    """A sealed value that neither the current nor any previous key opens."""


def _fernet(purpose: str, secret_key: str) -> Fernet:
    digest = hashlib.sha256(purpose.encode() + b"\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class Sealer:
    """Seals under the current key, opens under the current or a previous one."""

    def __init__(
        self, secret_key: str, previous_keys: Sequence[str] = (), purpose: str = STORED_SECRETS
    ) -> None:
        keys = [secret_key, *(key for key in previous_keys if key != secret_key)]
        self._fernet = MultiFernet([_fernet(purpose, key) for key in keys])

    @staticmethod
    def is_sealed(stored: str | None) -> bool:
        return bool(stored) and str(stored).startswith(SEALED_PREFIX)

    def seal(self, plain: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        """The plain value; None when none is stored or no key opens it.

        A value without the prefix was stored before sealing existed and is
        returned as it is (`hub migrate` seals those)."""
        if not stored:
            return None
        if not stored.startswith(SEALED_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken:
            return None  # sealed under a key that is no longer configured

    def reseal(self, stored: str) -> str:
        """`stored` sealed under the current key (a plain value is sealed); CannotOpen
        if no configured key opens it."""
        if not stored.startswith(SEALED_PREFIX):
            return self.seal(stored)
        try:
            token = self._fernet.rotate(stored[len(SEALED_PREFIX) :].encode())
        except InvalidToken:
            raise CannotOpen("no configured key opens this value") from None
        return SEALED_PREFIX + token.decode()
