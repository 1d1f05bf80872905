"""Two-factor login: TOTP codes (RFC 6238, pyotp) and single-use recovery codes.

An agent sets it up by scanning a secret into an authenticator app and typing
one code back; only then is it on, and ten recovery codes are made (shown once,
stored hashed). At login each code counts once: the time step of the latest
accepted code is stored, and a code of that step or an earlier one is refused.
Admins may require two-factor for every agent (a hub setting), and reset an
agent's (who then sets it up again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp

from hub.errors import Forbidden, InvalidInput, NotFound
from hub.events.unit_of_work import store_write
from hub.models import Agent, utcnow
from hub.sealing import Sealer
from storage.db import Database
from storage.repositories import agents as agent_rows
from storage.repositories import two_factor as rows

ISSUER = "Contact hub"  # what authenticator apps show above the account
# A code of the step before or after the current one is accepted too: phones'
# clocks drift and people type slowly. Steps are pyotp's 30 seconds.
VALID_WINDOW = 1
CODE_DIGITS = 6
RECOVERY_CODE_COUNT = 10
# 16 characters of 31 (no i, l, o, 0, 1 to misread): 79 bits, beyond guessing,
# so a plain SHA-256 of each is enough at rest.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_CHARS = 16
MAX_CODE_CHARS = 64
REQUIRE_SETTING = "require_two_factor"

WRONG_CODE = "That code is not right. Type the current code from your app."


@dataclass(frozen=True)
class Enrollment:
    """What the agent scans (the otpauth URI) or types into their app (the secret)."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


@dataclass(frozen=True)
class TwoFactorState:
    enabled: bool
    recovery_codes_left: int


def normalized(code: str) -> str:
    """A code as typed, without spaces and dashes, in lower case."""
    return "".join(code.split()).replace("-", "").lower()[:MAX_CODE_CHARS]


def format_recovery_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class TwoFactorService:
    def __init__(self, db: Database, sealer: Sealer, clock: Callable[[], float] = time.time):
        self._db = db
        self._sealer = sealer
        self.clock = clock

    # ---- the agent's own ------------------------------------------------------------

    async def state(self, agent_id: int) -> TwoFactorState:
        async with self._db.read() as conn:
            row = await rows.of_agent(conn, agent_id)
            left = await rows.unused_recovery_codes(conn, agent_id)
        return TwoFactorState(row is not None and row.enabled_at is not None, left)

    async def is_enabled(self, agent_id: int) -> bool:
        return (await self.state(agent_id)).enabled

    async def begin(self, agent: Agent) -> Enrollment:
        """The secret to set up (the unconfirmed one if there is one, so that a reload
        shows what the agent may already have scanned)."""
        waiting = await self.waiting(agent)
        if waiting is not None:
            return waiting
        secret = pyotp.random_base32()
        async with store_write(self._db) as conn:
            await rows.put_pending(conn, agent.id, self._sealer.seal(secret), utcnow())
        return Enrollment(secret, self._uri(agent, secret))

    async def waiting(self, agent: Agent) -> Enrollment | None:
        """The unconfirmed set-up, if one was begun; writes nothing."""
        async with self._db.read() as conn:
            row = await rows.of_agent(conn, agent.id)
        if row is not None and row.enabled_at is not None:
            raise InvalidInput("Two-factor login is already on.")
        secret = self._sealer.open(row.secret) if row is not None else None
        return Enrollment(secret, self._uri(agent, secret)) if secret else None

    def _uri(self, agent: Agent, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=agent.email, issuer_name=ISSUER)

    async def confirm(self, agent: Agent, code: str) -> list[str]:
        """Turn two-factor on if `code` is the app's current one; the recovery codes."""
        async with self._db.read() as conn:
            row = await rows.of_agent(conn, agent.id)
        if row is None or row.enabled_at is not None:
            raise InvalidInput("Start the set-up again: there is no set-up waiting.")
        step = self._step_of(self._sealer.open(row.secret), normalized(code))
        if step is None:
            raise InvalidInput(WRONG_CODE)
        codes = _new_recovery_codes()
        async with store_write(self._db) as conn:
            if not await rows.enable(conn, agent.id, utcnow(), step):
                raise InvalidInput("Two-factor login is already on.")
            await rows.replace_recovery_codes(conn, agent.id, [_hash(c) for c in codes])
        return [format_recovery_code(c) for c in codes]

    async def check(self, agent_id: int, code: str, *, address: str | None = None) -> bool:
        """Whether `code` is a current app code or an unused recovery code of the agent
        (either is then used up). With `address`, a wrong one counts as a failed login."""
        typed = normalized(code)
        ok = False
        async with store_write(self._db) as conn:
            row = await rows.of_agent(conn, agent_id)
            if row is not None and row.enabled_at is not None:
                if len(typed) == RECOVERY_CODE_CHARS:
                    ok = await rows.use_recovery_code(conn, agent_id, _hash(typed), utcnow())
                else:
                    step = self._step_of(self._sealer.open(row.secret), typed)
                    ok = step is not None and await rows.use_step(conn, agent_id, step)
            if not ok and address is not None:
                await agent_rows.count_failed_login(conn, agent_id, utcnow(), address)
        return ok

    async def new_recovery_codes(self, agent: Agent, code: str, address: str) -> list[str]:
        """Ten new recovery codes in place of the old ones, for a current app code."""
        if not await self.is_enabled(agent.id):
            raise InvalidInput("Turn two-factor login on first.")
        if len(normalized(code)) == RECOVERY_CODE_CHARS or not await self.check(
            agent.id, code, address=address
        ):
            raise InvalidInput(WRONG_CODE)
        codes = _new_recovery_codes()
        async with store_write(self._db) as conn:
            await rows.replace_recovery_codes(conn, agent.id, [_hash(c) for c in codes])
        return [format_recovery_code(c) for c in codes]

    async def turn_off(self, agent: Agent, code: str, address: str) -> None:
        """Two-factor off, for a current code (the caller has checked the password)."""
        if await self.required():
            raise Forbidden("Admins require two-factor login for every agent.")
        if not await self.check(agent.id, code, address=address):
            raise InvalidInput(WRONG_CODE)
        async with store_write(self._db) as conn:
            await rows.remove(conn, agent.id)

    # ---- admins ---------------------------------------------------------------------

    async def required(self) -> bool:
        async with self._db.read() as conn:
            return bool(await rows.setting(conn, REQUIRE_SETTING))

    async def needs_setup(self, agent_id: int) -> bool:
        """Whether the agent must set two-factor up before using the console."""
        return await self.required() and not await self.is_enabled(agent_id)

    async def login_step(self, agent_id: int) -> str | None:
        """After the right password: "code" (ask for a code), "setup" (required but not
        set up), or None (log in)."""
        if await self.is_enabled(agent_id):
            return "code"
        return "setup" if await self.required() else None

    async def enabled_agent_ids(self) -> set[int]:
        async with self._db.read() as conn:
            return await rows.enabled_agent_ids(conn)

    async def set_required(self, by: Agent, required: bool) -> None:
        """Require two-factor for everyone (or not). Turning it on ends the sessions of
        agents without it: they set it up at their next login."""
        if not by.is_admin:
            raise Forbidden("Only admins can change this.")
        if required and not await self.is_enabled(by.id):
            raise InvalidInput("Turn two-factor login on for yourself first.")
        async with store_write(self._db) as conn:
            await rows.put_setting(conn, REQUIRE_SETTING, required, utcnow(), by.id)
            if required:
                await rows.end_sessions_without_two_factor(conn)

    async def reset(self, agent_id: int) -> None:
        """Two-factor off for an agent who lost their codes; their sessions end, and
        they set it up again if it is required."""
        async with store_write(self._db) as conn:
            if await agent_rows.row(conn, agent_id) is None:
                raise NotFound("There is no such agent.")
            await rows.remove(conn, agent_id)
            await agent_rows.delete_sessions_of(conn, agent_id)

    async def reset_by_email(self, email: str) -> None:
        """`reset` for the agent with this address (`hub reset-two-factor`)."""
        async with self._db.read() as conn:
            agent_id = await rows.agent_id_by_email(conn, email.strip().lower())
        if agent_id is None:
            raise InvalidInput(f"no agent with email {email}")
        await self.reset(agent_id)

    # ---- codes ----------------------------------------------------------------------

    def _step_of(self, secret: str | None, code: str) -> int | None:
        """The time step (within the window) whose code `code` is, if any."""
        if not secret or len(code) != CODE_DIGITS or not code.isdigit():
            return None
        totp = pyotp.TOTP(secret)
        now = totp.timecode(self.clock())
        for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None


def _new_recovery_codes() -> list[str]:
    return [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
