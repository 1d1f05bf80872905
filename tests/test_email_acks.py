"""Acknowledgements of new tickets go only to a From the trusted receiving server
authenticated (Authentication-Results), capped per contact and per inbox an hour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from hub.composition.assemble import start_hub
from hub.core import Hub
from hub.email.inboxes import EmailInbox
from hub.email.models import Address, InboundEmail
from hub.settings import Settings
from tests.conftest import migrated_settings
from tests.console_client import Console
from tests.email_helpers import TRUSTED_AUTHSERV, inbound, make_email_inbox, passing_auth
from tests.engines import settings  # noqa: F401 - runs every test on both engines


async def _acks(hub: Hub, conversation_id: int | None) -> int:
    assert conversation_id is not None
    details = await hub.email.details(conversation_id)
    return sum(1 for d in details.values() if d.direction.value == "out" and d.automatic)


async def _hub_with(settings: Settings, **mail: object) -> AsyncIterator[Hub]:  # noqa: F811
    started = await start_hub(replace(settings, mail=replace(settings.mail, **mail)))  # type: ignore[arg-type]
    try:
        yield started
    finally:
        await started.stop()


async def _acked(hub: Hub, inbox: EmailInbox, email: InboundEmail) -> bool:
    result = await hub.email.ingest(inbox, email)
    assert result.outcome == "new"  # the ticket opens either way
    return await _acks(hub, result.conversation_id) == 1


FORGED = {
    "no result": (),
    "failed": ("mx.shop.test; dkim=fail header.d=customer.test; spf=softfail",),
    "untrusted server": (passing_auth("alice@customer.test", authserv_id="mx.evil.test"),),
    "another domain passed": (passing_auth("eve@evil.test"),),
    "unreadable": ("mx.shop.test;;; dkim=pass",),
}


@pytest.mark.parametrize("results", FORGED.values(), ids=FORGED.keys())
async def test_a_forged_from_gets_no_acknowledgement(hub: Hub, results):  # type: ignore[no-untyped-def]
    inbox = await make_email_inbox(hub, auto_ack=True)
    assert not await _acked(hub, inbox, inbound(authentication_results=results))
    assert await _acked(hub, inbox, inbound(sender="bob@customer.test"))  # authenticated


async def test_a_reply_to_outside_the_authenticated_domain_gets_no_acknowledgement(hub: Hub):
    inbox = await make_email_inbox(hub, auto_ack=True)
    email = replace(inbound(sender="eve@evil.test"), reply_to=Address("victim@customer.test"))
    assert not await _acked(hub, inbox, email)


async def test_a_subdomain_signature_aligns_and_an_unrelated_one_does_not(hub: Hub):
    inbox = await make_email_inbox(hub, auto_ack=True)
    signed_by_parent = "mx.shop.test; dkim=pass header.d=customer.test"
    assert await _acked(
        hub, inbox, inbound(sender="a@eu.customer.test", authentication_results=(signed_by_parent,))
    )
    lookalike = "mx.shop.test; dkim=pass header.d=evilcustomer.test"
    assert not await _acked(hub, inbox, inbound(authentication_results=(lookalike,)))


async def test_without_a_trusted_server_no_acknowledgement_is_sent(settings: Settings):  # noqa: F811
    async for hub in _hub_with(settings, trusted_authserv_id=""):
        inbox = await make_email_inbox(hub, auto_ack=True)
        assert not await _acked(hub, inbox, inbound())


async def test_the_per_inbox_hourly_cap_holds_across_new_addresses(settings: Settings):  # noqa: F811
    async for hub in _hub_with(settings, acks_per_inbox_per_hour=3):
        inbox = await make_email_inbox(hub, auto_ack=True)
        other = await make_email_inbox(hub, address="sales@shop.test", auto_ack=True)
        acked = [
            await _acked(hub, inbox, inbound(sender=f"user{n}@site{n}.test")) for n in range(8)
        ]
        assert acked == [True] * 3 + [False] * 5
        assert await _acked(hub, other, inbound(sender="new@site.test"))  # its own cap


NEEDS_SERVER = "needs the trusted receiving server's name"


async def test_the_console_names_the_trusted_server(hub: Hub, as_admin: Console):
    inbox = await make_email_inbox(hub, auto_ack=True)
    form = await as_admin.http.get(f"/console/email-inboxes/{inbox.id}")
    assert f"<code>{TRUSTED_AUTHSERV}</code> authenticated" in form.text
    listing = await as_admin.http.get("/console/email-inboxes")
    assert NEEDS_SERVER not in form.text and NEEDS_SERVER not in listing.text


class TestWithoutATrustedServer:
    @pytest.fixture
    def settings(self, tmp_path, migrated_store) -> Settings:  # type: ignore[no-untyped-def]
        return migrated_settings(tmp_path, migrated_store, HUB_MAIL_TRUSTED_AUTHSERV_ID="")

    async def test_the_console_says_acknowledgements_need_it(self, hub: Hub, as_admin: Console):
        inbox = await make_email_inbox(hub, auto_ack=True)
        for page in (f"/console/email-inboxes/{inbox.id}", "/console/email-inboxes"):
            response = await as_admin.http.get(page)
            assert response.status_code == 200 and NEEDS_SERVER in response.text
