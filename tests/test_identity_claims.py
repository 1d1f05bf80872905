"""An unverified identity claim only labels the visitor (issue 15): the claimed
email is never one a real mailbox, or a verified user, is later joined on."""

from __future__ import annotations

from hub.models import Agent
from hub.security import identity_hash
from tests.conftest import LiveServer
from tests.console_client import Console, visitor_says
from tests.email_helpers import inbound, make_email_inbox
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
VICTIM = {"id": "user-42", "name": "Vera Victim", "email": "vera@example.com"}


async def test_a_claimed_email_is_not_joined_by_the_real_mailbox_or_the_verified_user(
    live_server: LiveServer,
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    mail_inbox = await make_email_inbox(hub)
    url = live_server.ws_url
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as attacker:
        welcome = await attacker.hello()
        attacker_contact_id = (await hub.visitors.get(welcome["visitor_id"])).contact_id
        await attacker.send({"type": "identify", "id": VICTIM["id"], "email": VICTIM["email"]})
        # The visitor sees their own label back ...
        assert (await attacker.recv_type("identified"))["contact"]["email"] == VICTIM["email"]
    # ... but the contact does not hold it as its address.
    claimed = await hub.visitors.contact(attacker_contact_id)
    assert (claimed.external_id, claimed.email) == (None, None)
    # Her real mailbox writes in: a ticket on a contact of its own.
    result = await hub.email.ingest(mail_inbox, inbound(sender=VICTIM["email"], name="Vera"))
    assert result.conversation_id is not None
    ticket = await hub.conversations.get(result.conversation_id)
    assert ticket.contact_id != attacker_contact_id
    # She logs in on the site with a valid hash: nothing of hers joins the attacker.
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as vera:
        hers = await vera.hello()
        await vera.send(
            {**VICTIM, "type": "identify", "hash": identity_hash(inbox.identity_secret, "user-42")}
        )
        await vera.recv_type("identified")
    her_contact_id = (await hub.visitors.get(hers["visitor_id"])).contact_id
    assert her_contact_id != attacker_contact_id
    assert (await hub.visitors.contact(attacker_contact_id)).email is None


async def test_unsigned_frames_never_edit_a_contact_a_verified_identity_owns(
    live_server: LiveServer,
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    signed = identity_hash(inbox.identity_secret, VICTIM["id"])
    async with WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN) as client:
        welcome = await client.hello()
        await client.send({**VICTIM, "type": "identify", "hash": signed})
        await client.recv_type("identified")
        # Someone else at her browser (or a script on the page) claims to be another user.
        await client.send(
            {"type": "identify", "id": "user-66", "name": "Mallory", "email": "m@evil.test"}
        )
        answered = await client.recv_type("identified")
    contact = await hub.visitors.contact((await hub.visitors.get(welcome["visitor_id"])).contact_id)
    assert (contact.external_id, contact.name, contact.email, contact.claimed) == (
        VICTIM["id"],
        VICTIM["name"],
        VICTIM["email"],
        {},
    )
    assert answered["contact"] == {"name": VICTIM["name"], "email": VICTIM["email"]}


async def test_the_away_form_does_not_overwrite_a_verified_identitys_details(
    live_server: LiveServer,
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    signed = identity_hash(inbox.identity_secret, VICTIM["id"])
    async with WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN) as client:
        await client.hello()
        await client.send({**VICTIM, "type": "identify", "hash": signed})
        await client.recv_type("identified")
        ack = await client.say("Mail me", "c-away", contact={"name": "M", "email": "m@evil.test"})
    conversation = await hub.conversations.get(ack["conversation_id"])
    assert (conversation.contact_name, conversation.contact_email) == (
        VICTIM["name"],
        VICTIM["email"],
    )


async def test_an_agent_reply_is_emailed_only_once_an_agent_confirms_the_claimed_address(
    live_server: LiveServer, agent: Agent, as_agent: Console
) -> None:
    hub = live_server.hub
    website = await hub.inboxes.create_website("Shop", [ORIGIN])
    mail_inbox = await make_email_inbox(hub)
    await hub.inboxes.continue_by_email(website.id, mail_inbox.id)
    visitor = await hub.visitors.create(website, "pytest")
    await hub.visitors.identify(visitor, website, VICTIM["id"], email=VICTIM["email"])
    _, posted = await visitor_says(hub, website, "Where is my parcel?", visitor=visitor)
    conversation_id, contact_id = posted.conversation.id, posted.conversation.contact_id
    await hub.conversations.reply(agent, conversation_id, "Your door code is 4242")
    assert await hub.email.thread(conversation_id) is None  # not to a claimed address
    page = await as_agent.http.get(f"/console/contacts/{contact_id}")
    assert 'data-claimed="email"' in page.text and 'data-detail="email"' not in page.text
    confirmed = await as_agent.post_form(
        f"/console/contacts/{contact_id}", {"name": "", "email": VICTIM["email"]}
    )
    assert confirmed.status_code == 303
    page = await as_agent.http.get(f"/console/contacts/{contact_id}")
    assert 'data-claimed="email"' not in page.text and 'data-detail="email"' in page.text
    await hub.conversations.reply(agent, conversation_id, "Sent by email now")
    thread = await hub.email.thread(conversation_id)
    assert thread is not None and thread["participants"] == [VICTIM["email"]]


async def test_an_admin_requires_identity_and_unsigned_claims_are_then_refused(
    live_server: LiveServer, as_admin: Console, as_agent: Console
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    path = f"/console/inboxes/{inbox.id}/identity"
    page = await as_admin.http.get(f"/console/inboxes/{inbox.id}")
    assert 'name="require_identity"' in page.text and inbox.identity_secret in page.text
    # Not an admin, or no CSRF token: refused, and nothing changes.
    assert (await as_agent.post_form(path, {"require_identity": "1"})).status_code == 403
    forged = await as_admin.http.post(path, data={"require_identity": "1"})
    assert forged.status_code == 403
    assert (await hub.inboxes.get(inbox.id)).require_identity is False  # type: ignore[union-attr]
    assert (await as_admin.post_form(path, {"require_identity": "1"})).status_code == 303
    assert (await hub.inboxes.get(inbox.id)).require_identity is True  # type: ignore[union-attr]
    async with WidgetClient.connect(live_server.ws_url, inbox.site_token, ORIGIN) as client:
        await client.hello()
        await client.send({"type": "identify", "id": VICTIM["id"], "email": VICTIM["email"]})
        refused = await client.recv_type("error")
    assert refused["code"] == "unverified_identity"
    # Unchecked, the box is absent from the form: claims only label the visitor again.
    assert (await as_admin.post_form(path, {})).status_code == 303
    assert (await hub.inboxes.get(inbox.id)).require_identity is False  # type: ignore[union-attr]
    assert (await as_admin.post_form(path, {"require_identity": "maybe"})).status_code == 400


async def test_attributes_from_an_unverified_socket_never_edit_a_verified_contact(
    live_server: LiveServer,
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    signed = identity_hash(inbox.identity_secret, VICTIM["id"])
    url = live_server.ws_url
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as vera:
        welcome = await vera.hello()
        await vera.send({**VICTIM, "type": "identify", "hash": signed})
        await vera.recv_type("identified")
        await vera.send({"type": "attributes", "attributes": {"plan": "pro"}})
        await vera.send({"type": "ping"})
        await vera.recv_type("pong")
    contact_id = (await hub.visitors.get(welcome["visitor_id"])).contact_id
    assert (await hub.visitors.contact(contact_id)).attributes == {"plan": "pro"}
    # Her visitor token, replayed by a socket that never proved who it is.
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as other:
        await other.hello(welcome["visitor_token"])
        await other.send({"type": "attributes", "attributes": {"plan": "free", "vip": True}})
        await other.send({"type": "ping"})
        await other.recv_type("pong")
    assert (await hub.visitors.contact(contact_id)).attributes == {"plan": "pro"}


async def test_attributes_after_a_verified_identify_land_on_the_users_contact(
    live_server: LiveServer,
) -> None:
    hub = live_server.hub
    inbox = await hub.inboxes.create_website("Shop", [ORIGIN])
    frame = {**VICTIM, "type": "identify", "hash": identity_hash(inbox.identity_secret, "user-42")}
    url = live_server.ws_url
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as laptop:
        first = await laptop.hello()
        await laptop.send(frame)
        await laptop.recv_type("identified")
    async with WidgetClient.connect(url, inbox.site_token, ORIGIN) as phone:
        await phone.hello()
        await phone.send(frame)  # moves this new visitor onto her contact
        await phone.recv_type("identified")
        await phone.send({"type": "attributes", "attributes": {"device": "phone"}})
        await phone.send({"type": "ping"})
        await phone.recv_type("pong")
    contact_id = (await hub.visitors.get(first["visitor_id"])).contact_id
    assert (await hub.visitors.contact(contact_id)).attributes == {"device": "phone"}
