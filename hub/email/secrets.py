"""Mail server passwords at rest: sealed (hub/sealing.py) with a key derived from
HUB_SECRET_KEY, or a reference to an environment variable so the store never
holds them.

Stored forms: `enc:<Fernet token>` or `env:<VARIABLE>`; None means no password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from hub.errors import InvalidInput
from hub.sealing import MAIL_PASSWORDS, Sealer

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")


class MailSecrets:
    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        # A key of its own, so a leaked session key and a leaked mail key differ.
        self.sealer = Sealer(secret_key, previous_keys, MAIL_PASSWORDS)

    def seal(self, password: str | None, env_name: str | None = None) -> str | None:
        """What to store for a password typed in the console, or a variable's name."""
        if env_name:
            name = env_name.strip()
            if not _ENV_NAME.match(name):
                raise InvalidInput("an environment variable name such as SMTP_PASSWORD", "env")
            return f"env:{name}"
        if not password:
            return None
        if len(password) > 200:
            raise InvalidInput("password is longer than 200 characters", "password")
        return self.sealer.seal(password)

    def reveal(self, stored: str | None) -> str | None:
        """The password to log in with; None when none is set or it cannot be read."""
        if not stored:
            return None
        if stored.startswith("env:"):
            return os.environ.get(stored[4:])
        if Sealer.is_sealed(stored):
            return self.sealer.open(stored)  # None if sealed under a key no longer set
        return None

    @staticmethod
    def describe(stored: str | None) -> str:
        """How the console shows a stored password, without revealing it."""
        if not stored:
            return "none"
        if stored.startswith("env:"):
            return f"from ${stored[4:]}"
        return "stored encrypted"
