"""Two-factor secrets survive a change of HUB_SECRET_KEY (`hub rotate-secret-key`), and
`hub reset-two-factor` lets a locked-out admin in again (real subprocesses)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pyotp
import sqlalchemy as sa

from hub.composition.assemble import start_hub
from hub.models import Role
from hub.settings import Settings
from storage.tables import agent_two_factor
from tests.conftest import make_settings
from tests.console_client import AGENT_PASSWORD
from tests.test_sealing import NEW_KEY, OLD_KEY, _cli

EMAIL = "ada@example.com"


async def _admin_with_two_factor(settings: Settings) -> tuple[str, str]:
    """An admin with two-factor on and a session open; (the TOTP secret, the session token)."""
    hub = await start_hub(settings)
    try:
        admin = await hub.agents.create(EMAIL, "Ada", AGENT_PASSWORD, Role.ADMIN)
        enrollment = await hub.two_factor.begin(admin)
        await hub.two_factor.confirm(admin, pyotp.TOTP(enrollment.secret).now())
        return enrollment.secret, await hub.agents.open_session(admin)
    finally:
        await hub.stop()


async def _code_accepted(settings: Settings, secret: str) -> tuple[bool, str]:
    """Whether the hub takes the next step's code; and the stored (sealed) secret."""
    hub = await start_hub(settings)
    try:
        hub.two_factor.clock = lambda: time.time() + 30  # the set-up used the current step
        [admin] = await hub.agents.list()
        code = pyotp.TOTP(secret).at(time.time() + 30)
        accepted = await hub.two_factor.check(admin.id, code)
        async with hub.db.read() as conn:
            stored = await conn.scalar(sa.select(agent_two_factor.c.secret))
        return accepted, stored
    finally:
        await hub.stop()


def test_rotating_the_secret_key_keeps_two_factor_working(tmp_path: Path) -> None:
    assert _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY).returncode == 0
    secret, _ = asyncio.run(_admin_with_two_factor(make_settings(tmp_path, HUB_SECRET_KEY=OLD_KEY)))
    new_only = make_settings(tmp_path, HUB_SECRET_KEY=NEW_KEY)
    accepted, sealed_before = asyncio.run(_code_accepted(new_only, secret))
    assert not accepted  # the new key alone does not open it

    done = _cli(
        tmp_path, "rotate-secret-key", HUB_SECRET_KEY=NEW_KEY, HUB_PREVIOUS_SECRET_KEYS=OLD_KEY
    )
    assert done.returncode == 0, done.stderr
    assert "Sealed 1 stored secrets" in done.stdout
    accepted, sealed_after = asyncio.run(_code_accepted(new_only, secret))
    assert accepted
    assert sealed_after.startswith("enc:") and sealed_after != sealed_before
    assert secret not in sealed_after


def test_reset_two_factor_turns_it_off_and_ends_the_sessions(tmp_path: Path) -> None:
    assert _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY).returncode == 0
    settings = make_settings(tmp_path, HUB_SECRET_KEY=OLD_KEY)
    _, token = asyncio.run(_admin_with_two_factor(settings))

    unknown = _cli(tmp_path, "reset-two-factor", "nobody@example.com", HUB_SECRET_KEY=OLD_KEY)
    assert unknown.returncode == 2
    assert "no agent with email nobody@example.com" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    done = _cli(tmp_path, "reset-two-factor", EMAIL.upper(), HUB_SECRET_KEY=OLD_KEY)
    assert done.returncode == 0, done.stderr
    assert "Two-factor login is off" in done.stdout

    async def check() -> None:
        hub = await start_hub(settings)
        try:
            [admin] = await hub.agents.list()
            assert not (await hub.two_factor.state(admin.id)).enabled
            assert await hub.two_factor.login_step(admin.id) is None
            assert await hub.agents.session_agent(token) is None
        finally:
            await hub.stop()

    asyncio.run(check())


def test_hub_help_lists_reset_two_factor(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--help")
    assert done.returncode == 0
    assert "reset-two-factor" in done.stdout
