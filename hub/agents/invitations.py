"""Invitation links: signed with the hub's secret key, single use, and expiring.

A link carries the invited agent's id and a nonce stored on their row; it is
signed and timestamped (itsdangerous, as visitor tokens are). Accepting it
clears the nonce, so a second use finds none; inviting again stores a new
nonce, so an older link stops working. Forged or altered links fail the
signature, old ones the age check.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from hub.errors import InvalidInput
from hub.security import ClockSigner

# Long enough to reach someone over a weekend, short enough that a link
# forgotten in a mailbox is not a standing way in.
INVITATION_DAYS = 7
NONCE_BYTES = 24


@dataclass(frozen=True)
class Invitation:
    agent_id: int
    nonce: str


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


class InvitationLinks:
    def __init__(
        self,
        secret_key: str,
        max_age_days: int = INVITATION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age = max_age_days * 86400
        self.clock = clock  # seconds since the epoch; tests move it
        self._serializer = URLSafeTimedSerializer(
            secret_key,
            salt="agent-invitation",
            signer=ClockSigner,
            signer_kwargs={"now": lambda: self.clock()},
        )

    def token(self, invitation: Invitation) -> str:
        return self._serializer.dumps({"a": invitation.agent_id, "n": invitation.nonce})

    def read(self, token: str) -> Invitation:
        """The invitation a token names; refused if forged, altered or expired (its
        nonce is checked against the store by the caller)."""
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise InvalidInput(
                "This invitation has expired. Ask an admin to send a new one."
            ) from exc
        except BadSignature as exc:
            raise InvalidInput("This invitation link is not valid.") from exc
        agent_id, nonce = (data.get("a"), data.get("n")) if isinstance(data, dict) else (None, None)
        if not isinstance(agent_id, int) or not isinstance(nonce, str):
            raise InvalidInput("This invitation link is not valid.")
        return Invitation(agent_id, nonce)
