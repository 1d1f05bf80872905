"""Email inbox settings: validation, sealed passwords, tokens, plus-addresses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.core import Hub
from hub.email.inboxes import EmailInboxConfig, MailServer
from hub.email.models import TlsMode
from hub.errors import InvalidInput
from storage.tables import email_inboxes
from tests.email_helpers import make_email_inbox


async def test_a_typed_password_is_stored_sealed_and_kept_on_edit(hub: Hub):
    config = EmailInboxConfig(
        name="Support",
        address="Support@Shop.test",
        smtp=MailServer("smtp.shop.test", 587, TlsMode.STARTTLS, "support@shop.test"),
        smtp_password="s3cret-pass",
    )
    inbox, token = await hub.email_inboxes.create(config)
    assert inbox.address == "support@shop.test"
    async with hub.db.read() as conn:
        stored = await conn.scalar(sa.select(email_inboxes.c.smtp_password))
    assert stored.startswith("enc:") and "s3cret" not in stored
    assert hub.email_inboxes.password(inbox.smtp) == "s3cret-pass"
    # Saving the form without typing the password again keeps it.
    edited = await hub.email_inboxes.update(
        inbox.id, EmailInboxConfig(name="Help", address="support@shop.test", smtp=config.smtp)
    )
    assert edited.name == "Help"
    assert hub.email_inboxes.password(edited.smtp) == "s3cret-pass"
    assert (await hub.email_inboxes.by_intake_token(token)).id == inbox.id
    assert await hub.email_inboxes.by_intake_token(token + "x") is None


async def test_a_stored_password_can_be_removed(hub: Hub, monkeypatch):
    monkeypatch.setenv("SHOP_SMTP_PASSWORD", "from-env")
    config = EmailInboxConfig(
        name="S", address="a@shop.test", smtp_password_env="SHOP_SMTP_PASSWORD"
    )
    inbox, _ = await hub.email_inboxes.create(config)
    kept = await hub.email_inboxes.update(
        inbox.id, EmailInboxConfig(name="S", address="a@shop.test")
    )
    assert kept.smtp.password_ref == "env:SHOP_SMTP_PASSWORD"
    removed = await hub.email_inboxes.update(
        inbox.id, EmailInboxConfig(name="S", address="a@shop.test", smtp_password_remove=True)
    )
    assert removed.smtp.password_ref is None
    assert hub.email_inboxes.password(removed.smtp) is None


async def test_a_password_can_come_from_the_environment(hub: Hub, monkeypatch):
    monkeypatch.setenv("SHOP_SMTP_PASSWORD", "from-env")
    inbox, _ = await hub.email_inboxes.create(
        EmailInboxConfig(name="S", address="a@shop.test", smtp_password_env="SHOP_SMTP_PASSWORD")
    )
    assert inbox.smtp.password_ref == "env:SHOP_SMTP_PASSWORD"
    assert hub.email_inboxes.password(inbox.smtp) == "from-env"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address": "not an address"}, "address"),
        ({"address": "support+x@shop.test"}, "address"),
        ({"smtp": MailServer("smtp.shop.test", 70000)}, "smtp_port"),
        ({"smtp": MailServer("bad host", 25)}, "smtp_host"),
        ({"smtp_password_env": "lower-case"}, "env"),
        ({"imap_enabled": True}, "imap_host"),
        ({"auto_ack_template": "Hello {{ name"}, "auto_ack_template"),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(hub: Hub, changes, field):
    config = {"name": "Support", "address": "support@shop.test", **changes}
    with pytest.raises(InvalidInput) as refused:
        await hub.email_inboxes.create(EmailInboxConfig(**config))
    assert refused.value.field == field
    assert await hub.email_inboxes.list() == []


async def test_an_address_belongs_to_one_inbox(hub: Hub):
    await make_email_inbox(hub)
    with pytest.raises(InvalidInput, match="already"):
        await make_email_inbox(hub, name="Again")


async def test_plus_addresses_find_their_inbox(hub: Hub):
    inbox = await make_email_inbox(hub)
    assert (await hub.email_inboxes.by_address("SUPPORT+abc123@shop.test")).id == inbox.id
    assert await hub.email_inboxes.by_address("sales@shop.test") is None
    assert inbox.token_in("support+abc123@shop.test") == "abc123"
    assert inbox.token_in("support+abc123@other.test") is None
    assert inbox.reply_address("abc123") == "support+abc123@shop.test"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.5",
        "192.168.1.10",
        "169.254.169.254",
        "[::1]",
        "::ffff:127.0.0.1",
        "fe80::1",
        "0.0.0.0",
        "localhost",
    ],
)
async def test_mail_hosts_on_the_hubs_own_network_are_refused_by_default(
    tmp_path, migrated_store, host: str
):
    from hub.composition.assemble import start_hub
    from tests.conftest import migrated_settings

    hub = await start_hub(
        migrated_settings(tmp_path, migrated_store, HUB_MAIL_ALLOW_PRIVATE_HOSTS="false")
    )
    try:
        for field, config in (
            (
                "smtp_host",
                EmailInboxConfig(
                    name="S", address="a@shop.test", smtp=MailServer(host, 25, TlsMode.NONE)
                ),
            ),
            (
                "imap_host",
                EmailInboxConfig(
                    name="S",
                    address="a@shop.test",
                    imap_enabled=True,
                    imap=MailServer(host, 143, TlsMode.NONE, "u"),
                ),
            ),
        ):
            with pytest.raises(InvalidInput, match="HUB_MAIL_ALLOW_PRIVATE_HOSTS") as refused:
                await hub.email_inboxes.create(config)
            assert refused.value.field == field
        assert await hub.email_inboxes.list() == []
        # A public address is fine.
        public = MailServer("93.184.216.34", 587, TlsMode.STARTTLS)
        inbox, _ = await hub.email_inboxes.create(
            EmailInboxConfig(name="S", address="a@shop.test", smtp=public)
        )
        with pytest.raises(InvalidInput, match="private, loopback or link-local"):
            await hub.email_inboxes.update(
                inbox.id,
                EmailInboxConfig(
                    name="S", address="a@shop.test", smtp=MailServer(host, 25, TlsMode.NONE)
                ),
            )
        assert (await hub.email_inboxes.get(inbox.id)).smtp.host == "93.184.216.34"
    finally:
        await hub.stop()


async def test_the_setting_allows_mail_servers_on_loopback(hub: Hub):
    inbox, _ = await hub.email_inboxes.create(
        EmailInboxConfig(name="S", address="a@shop.test", smtp=MailServer("127.0.0.1", 2525))
    )
    assert inbox.smtp.host == "127.0.0.1"
