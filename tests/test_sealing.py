"""Secrets at rest: voice-provider auth tokens, website identity secrets and mail
passwords are stored sealed, and survive a change of HUB_SECRET_KEY through
HUB_PREVIOUS_SECRET_KEYS and `hub rotate-secret-key` (a real subprocess)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from hub.composition.assemble import start_hub
from hub.core import Hub
from hub.email.inboxes import EmailInboxConfig, MailServer
from hub.settings import Settings
from storage.tables import email_inboxes, inboxes, voice_lines
from tests.conftest import make_settings

OLD_KEY = "the-old-secret-key-" + "o" * 32
NEW_KEY = "the-new-secret-key-" + "n" * 32
PROVIDER_TOKEN = "provider-token-0123456789abcdef"
SMTP_PASSWORD = "smtp-password-42"


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "HUB_DEMO": "false",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _stored(hub: Hub) -> list[str]:
    async with hub.db.read() as conn:
        return [
            *(
                await conn.scalars(
                    sa.select(inboxes.c.identity_secret).where(
                        inboxes.c.identity_secret.is_not(None)
                    )
                )
            ),
            *(await conn.scalars(sa.select(voice_lines.c.provider_auth_token))),
            *(await conn.scalars(sa.select(email_inboxes.c.smtp_password))),
        ]


async def _secrets_of(settings: Settings) -> tuple[str | None, str | None, str | None]:
    """What the hub opens: the website's identity secret, the provider token, the SMTP password."""
    hub = await start_hub(settings)
    try:
        website = (await hub.inboxes.list())[0]
        line = (await hub.phone_lines.list())[0]
        mail = (await hub.email_inboxes.list())[0]
        token = line.provider_auth_token.get() if line.provider_auth_token else None
        return website.identity_secret, token, hub.email_inboxes.password(mail.smtp)
    finally:
        await hub.stop()


async def _create_secrets(settings: Settings) -> tuple[str, list[str]]:
    hub = await start_hub(settings)
    try:
        website = await hub.inboxes.create_website("Shop", ["https://shop.example"])
        await hub.phone_lines.create(
            "Support line", ["020 7946 0000"], "GB", provider_auth_token=PROVIDER_TOKEN
        )
        await hub.email_inboxes.create(
            EmailInboxConfig(
                name="Support",
                address="support@shop.example",
                smtp=MailServer(host="127.0.0.1", port=2525, user="support"),
                smtp_password=SMTP_PASSWORD,
            )
        )
        assert website.identity_secret
        return website.identity_secret, await _stored(hub)
    finally:
        await hub.stop()


async def test_provider_tokens_and_identity_secrets_are_not_stored_in_plain(hub: Hub) -> None:
    website = await hub.inboxes.create_website("Shop", ["https://shop.example"])
    line, _ = await hub.phone_lines.create(
        "Support line", ["020 7946 0000"], "GB", provider_auth_token=PROVIDER_TOKEN
    )
    assert website.identity_secret and len(website.identity_secret) == 64
    stored = await _stored(hub)
    assert len(stored) == 2
    for value in stored:
        assert value.startswith("enc:")
        assert PROVIDER_TOKEN not in value and website.identity_secret not in value
    # The hub opens them where they are used.
    assert line.provider_auth_token and line.provider_auth_token.get() == PROVIDER_TOKEN
    again = await hub.inboxes.get(website.id)
    assert again and again.identity_secret == website.identity_secret
    await hub.phone_lines.update(
        line.inbox_id,
        phone_numbers=["020 7946 0000"],
        default_region="GB",
        blocked_numbers=[],
        provider_auth_token="a-new-provider-token",
    )
    assert "a-new-provider-token" not in " ".join(await _stored(hub))
    changed = await hub.phone_lines.get(line.inbox_id)
    assert (
        changed.provider_auth_token and changed.provider_auth_token.get() == "a-new-provider-token"
    )


def test_rotating_the_secret_key_keeps_every_secret_readable(tmp_path: Path) -> None:
    assert _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY).returncode == 0
    old = make_settings(tmp_path, HUB_SECRET_KEY=OLD_KEY)
    identity_secret, sealed_before = asyncio.run(_create_secrets(old))
    expected = (identity_secret, PROVIDER_TOKEN, SMTP_PASSWORD)
    assert asyncio.run(_secrets_of(old)) == expected

    # The new key alone opens none of them; with the old one as previous, all.
    assert asyncio.run(_secrets_of(make_settings(tmp_path, HUB_SECRET_KEY=NEW_KEY))) == (
        None,
        None,
        None,
    )
    both = make_settings(tmp_path, HUB_SECRET_KEY=NEW_KEY, HUB_PREVIOUS_SECRET_KEYS=OLD_KEY)
    assert asyncio.run(_secrets_of(both)) == expected

    done = _cli(
        tmp_path, "rotate-secret-key", HUB_SECRET_KEY=NEW_KEY, HUB_PREVIOUS_SECRET_KEYS=OLD_KEY
    )
    assert done.returncode == 0, done.stderr
    assert "Sealed 3 stored secrets" in done.stdout
    new_only = make_settings(tmp_path, HUB_SECRET_KEY=NEW_KEY)
    assert asyncio.run(_secrets_of(new_only)) == expected

    async def stored_now() -> list[str]:
        hub = await start_hub(new_only)
        try:
            return await _stored(hub)
        finally:
            await hub.stop()

    sealed_after = asyncio.run(stored_now())
    assert all(value.startswith("enc:") for value in sealed_after)
    assert not set(sealed_after) & set(sealed_before)


def test_rotation_without_the_old_key_changes_nothing_and_says_so(tmp_path: Path) -> None:
    assert _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY).returncode == 0
    old = make_settings(tmp_path, HUB_SECRET_KEY=OLD_KEY)
    identity_secret, _ = asyncio.run(_create_secrets(old))
    done = _cli(tmp_path, "rotate-secret-key", HUB_SECRET_KEY=NEW_KEY)
    assert done.returncode == 2
    assert "3 stored secrets open with neither HUB_SECRET_KEY nor HUB_PREVIOUS_SECRET_KEYS" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert asyncio.run(_secrets_of(old)) == (identity_secret, PROVIDER_TOKEN, SMTP_PASSWORD)


def test_migrate_seals_secrets_stored_in_plain_before(tmp_path: Path) -> None:
    assert _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY).returncode == 0
    settings = make_settings(tmp_path, HUB_SECRET_KEY=OLD_KEY)

    async def plant_plain() -> None:
        hub = await start_hub(settings)
        try:
            website = await hub.inboxes.create_website("Shop", ["https://shop.example"])
            line, _ = await hub.phone_lines.create("Line", ["020 7946 0000"], "GB")
            async with hub.db.write() as conn:
                await conn.execute(
                    inboxes.update()
                    .where(inboxes.c.id == website.id)
                    .values(identity_secret="f" * 64)
                )
                await conn.execute(
                    voice_lines.update()
                    .where(voice_lines.c.inbox_id == line.inbox_id)
                    .values(provider_auth_token=PROVIDER_TOKEN)
                )
        finally:
            await hub.stop()

    asyncio.run(plant_plain())
    done = _cli(tmp_path, "migrate", HUB_SECRET_KEY=OLD_KEY)
    assert done.returncode == 0, done.stderr
    assert "Sealed 2 secrets stored in plain text before" in done.stdout

    async def check() -> None:
        hub = await start_hub(settings)
        try:
            stored = await _stored(hub)
            assert len(stored) == 2 and all(value.startswith("enc:") for value in stored)
            website = (await hub.inboxes.list())[0]
            line = (await hub.phone_lines.list())[0]
            assert website.identity_secret == "f" * 64
            assert line.provider_auth_token and line.provider_auth_token.get() == PROVIDER_TOKEN
        finally:
            await hub.stop()

    asyncio.run(check())
