"""Email tickets: where received mail goes (threading rules, duplicates, bounces,
acknowledgements) and replies queued as threaded email. The outbox's delivery
over real SMTP is in test_email_outbox.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from hub.core import Hub
from hub.email.models import Attachment, Bounce, Envelope, OutboxState
from hub.email.tickets import MAX_ACKS_PER_HOUR
from hub.errors import InvalidInput
from hub.models import Agent, ContactDetails, Inbound, Status
from storage.tables import contacts, email_outbox, email_raw
from tests.email_helpers import SUPPORT, inbound, make_email_inbox
from tests.engines import settings  # noqa: F401 - runs every test on both engines


async def _outgoing(hub: Hub, conversation_id: int):  # type: ignore[no-untyped-def]
    details = await hub.email.details(conversation_id)
    return [d for d in details.values() if d.direction.value == "out"]


async def _raw_of(hub: Hub, email_id: int) -> bytes:
    return (await hub.email.raw(email_id))[1]


async def test_a_new_email_opens_a_ticket_for_the_sender(hub: Hub):
    inbox = await make_email_inbox(hub)
    result = await hub.email.ingest(
        inbox, inbound("My parcel is late.", visible_text="My parcel is late.")
    )
    assert result.outcome == "new"
    conversation = await hub.conversations.get(result.conversation_id)
    assert conversation.inbox_id == inbox.id
    assert conversation.contact_email == "alice@customer.test"
    assert conversation.contact_name == "Alice Doe"
    assert conversation.status is Status.OPEN
    [message] = await hub.conversations.messages(conversation.id)
    assert message.text == "My parcel is late."
    assert message.author_name == "Alice Doe"
    thread = await hub.email.thread(conversation.id)
    assert thread["subject"] == "Where is my order?"
    assert thread["participants"] == ["alice@customer.test"]
    assert thread["reply_address"].startswith("support+")
    [details] = (await hub.email.details(conversation.id)).values()
    assert details.from_address == "alice@customer.test"
    assert b"My parcel is late." in await _raw_of(hub, details.id)


async def test_the_same_message_id_twice_is_stored_once(hub: Hub):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(message_id="once@customer.test"))
    again = await hub.email.ingest(inbox, inbound(message_id="once@customer.test"))
    assert again.outcome == "duplicate"
    assert again.conversation_id == first.conversation_id
    assert len(await hub.conversations.messages(first.conversation_id)) == 1


async def test_a_message_without_message_id_is_stored_once_too(hub: Hub):
    inbox = await make_email_inbox(hub)
    email = inbound(message_id=None)
    first = await hub.email.ingest(inbox, email)
    assert (await hub.email.ingest(inbox, email)).outcome == "duplicate"
    assert first.outcome == "new"


async def test_a_returning_customer_keeps_one_contact(hub: Hub):
    inbox = await make_email_inbox(hub)
    await hub.email.ingest(inbox, inbound(subject="First question"))
    await hub.email.ingest(inbox, inbound(subject="Another question"))
    async with hub.db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(contacts.c.email == "alice@customer.test")
        )
    assert count == 1


async def test_a_reply_naming_our_reply_in_in_reply_to_joins_the_ticket(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    await hub.conversations.reply(agent, first.conversation_id, "It ships tomorrow.")
    [ours] = await _outgoing(hub, first.conversation_id)
    answer = await hub.email.ingest(
        inbox, inbound("Thanks!", subject="Re: Where is my order?", in_reply_to=(ours.message_id,))
    )
    assert answer.outcome == "joined" and answer.conversation_id == first.conversation_id


async def test_a_reply_naming_the_first_message_in_references_joins_the_ticket(hub: Hub):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(message_id="root@customer.test"))
    later = await hub.email.ingest(
        inbox,
        inbound(
            "One more thing",
            subject="something else entirely",
            references=("root@customer.test", "unknown@elsewhere.test"),
        ),
    )
    assert later.outcome == "joined" and later.conversation_id == first.conversation_id


async def test_mail_to_the_tickets_plus_address_joins_it(hub: Hub):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    thread = await hub.email.thread(first.conversation_id)
    # A new message (no threading headers) written to the reply address.
    by_envelope = await hub.email.ingest(
        inbox,
        inbound("Written fresh", subject="hello"),
        Envelope(recipients=(thread["reply_address"],), mail_from="alice@customer.test"),
    )
    by_header = await hub.email.ingest(
        inbox, inbound("Via To header", subject="hi", to=(thread["reply_address"],))
    )
    assert by_envelope.conversation_id == first.conversation_id
    assert by_header.conversation_id == first.conversation_id
    # A made-up token opens a new ticket instead of landing anywhere.
    guessed = await hub.email.ingest(
        inbox, inbound("guess", subject="hi", to=("support+aaaaaaaaaa@shop.test",))
    )
    assert guessed.outcome == "new"


async def test_the_ticket_token_in_the_subject_needs_a_participant(hub: Hub):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(cc=("bob@customer.test",)))
    token = f"[#{first.conversation_id}]"
    by_customer = await hub.email.ingest(inbox, inbound("again", subject=f"Re: order {token}"))
    by_cc = await hub.email.ingest(
        inbox, inbound("me too", sender="bob@customer.test", name="Bob", subject=f"x {token}")
    )
    stranger = await hub.email.ingest(
        inbox, inbound("hijack", sender="eve@evil.test", subject=f"Re: {token}")
    )
    assert by_customer.conversation_id == first.conversation_id
    assert by_cc.conversation_id == first.conversation_id
    assert stranger.outcome == "new" and stranger.conversation_id != first.conversation_id


async def test_the_same_subject_alone_never_joins_a_ticket(hub: Hub):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(subject="Invoice"))
    second = await hub.email.ingest(inbox, inbound(subject="Re: Invoice"))
    assert second.outcome == "new" and second.conversation_id != first.conversation_id


async def test_a_reply_reopens_a_resolved_ticket(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(message_id="r1@customer.test"))
    await hub.conversations.set_status(agent, first.conversation_id, Status.RESOLVED)
    await hub.email.ingest(inbox, inbound("still broken", in_reply_to=("r1@customer.test",)))
    assert (await hub.conversations.get(first.conversation_id)).status is Status.OPEN


async def test_an_agent_reply_is_queued_as_threaded_email_with_cc(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(
        inbox,
        inbound(
            message_id="q1@customer.test",
            references=("older@customer.test",),
            cc=("bob@customer.test", SUPPORT),
        ),
    )
    await hub.conversations.reply(agent, first.conversation_id, "On its way.\n\nSam")
    [ours] = await _outgoing(hub, first.conversation_id)
    assert ours.state is OutboxState.QUEUED
    assert ours.to == ("alice@customer.test",)
    assert ours.cc == ("bob@customer.test",)  # our own address is never copied
    assert ours.subject == f"Re: Where is my order? [#{first.conversation_id}]"
    message = (await _raw_of(hub, ours.id)).decode()
    assert "In-Reply-To: <q1@customer.test>" in message
    assert "References: <older@customer.test> <q1@customer.test>" in message
    assert f"Message-ID: <{ours.message_id}>" in message
    thread = await hub.email.thread(first.conversation_id)
    assert f"Reply-To: Shop Support <{thread['reply_address']}>" in message
    assert "multipart/alternative" in message


async def test_a_private_note_is_never_emailed(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    await hub.conversations.reply(agent, first.conversation_id, "internal", private=True)
    assert await _outgoing(hub, first.conversation_id) == []


async def test_attachments_go_with_an_email_reply_only(hub: Hub, agent: Agent, website):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    pdf = Attachment("label.pdf", "application/pdf", b"%PDF-1.4 label")
    await hub.conversations.reply(agent, first.conversation_id, "Label attached", attachments=[pdf])
    [ours] = await _outgoing(hub, first.conversation_id)
    assert [a["filename"] for a in ours.attachments] == ["label.pdf"]
    assert b'filename="label.pdf"' in await _raw_of(hub, ours.id)


async def test_an_acknowledgement_answers_a_person_but_never_an_automaton(hub: Hub):
    inbox = await make_email_inbox(hub, auto_ack=True)
    person = await hub.email.ingest(inbox, inbound(sender="p@customer.test"))
    [ack] = await _outgoing(hub, person.conversation_id)
    raw = (await _raw_of(hub, ack.id)).decode()
    assert "Auto-Submitted: auto-replied" in raw
    assert f"#{person.conversation_id}" in raw
    assert ack.automatic
    robot = await hub.email.ingest(inbox, inbound(sender="ooo@customer.test", automatic=True))
    null_path = await hub.email.ingest(
        inbox, inbound(sender="n@customer.test"), Envelope((SUPPORT,), mail_from="")
    )
    noreply = await hub.email.ingest(inbox, inbound(sender="no-reply@shop-platform.test"))
    for quiet in (robot, null_path, noreply):
        assert quiet.outcome == "new"
        assert await _outgoing(hub, quiet.conversation_id) == []


async def test_an_auto_responder_never_becomes_a_participant_or_cc(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound(message_id="start@customer.test"))
    vacation = await hub.email.ingest(
        inbox,
        inbound(
            "I am away until Monday.",
            sender="ooo@colleague.test",
            cc=("deputy@colleague.test",),
            in_reply_to=("start@customer.test",),
            automatic=True,
        ),
    )
    assert vacation.conversation_id == first.conversation_id
    assert (await hub.email.thread(first.conversation_id))["participants"] == [
        "alice@customer.test"
    ]
    await hub.conversations.reply(agent, first.conversation_id, "On its way.")
    [ours] = await _outgoing(hub, first.conversation_id)
    assert ours.to == ("alice@customer.test",) and ours.cc == ()


async def test_acknowledgements_to_one_sender_are_capped(hub: Hub):
    inbox = await make_email_inbox(hub, auto_ack=True)
    acked = 0
    for n in range(6):
        result = await hub.email.ingest(inbox, inbound(subject=f"loop {n}"))
        acked += len(await _outgoing(hub, result.conversation_id))
    assert acked == MAX_ACKS_PER_HOUR


async def test_a_bounce_fails_the_outgoing_message_in_its_ticket(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    await hub.conversations.reply(agent, first.conversation_id, "Answer")
    [ours] = await _outgoing(hub, first.conversation_id)
    bounce = inbound(
        "Delivery failed",
        sender="mailer-daemon@mx.customer.test",
        subject="Undelivered Mail Returned to Sender",
        automatic=True,
        bounce=Bounce(ours.message_id, "alice@customer.test", "5.1.1", "550 5.1.1 no such user"),
    )
    result = await hub.email.ingest(inbox, bounce, Envelope((SUPPORT,), mail_from=""))
    assert result.outcome == "bounce" and result.conversation_id == first.conversation_id
    [ours] = await _outgoing(hub, first.conversation_id)
    assert ours.state is OutboxState.FAILED
    assert "5.1.1" in ours.error
    messages = await hub.conversations.messages(first.conversation_id)
    assert "failed" in messages[-1].text and messages[-1].kind.value == "activity"
    async with hub.db.read() as conn:
        tickets = await conn.scalar(sa.select(sa.func.count()).select_from(email_outbox))
    assert tickets == 1


async def test_a_bounce_of_unknown_mail_opens_no_ticket(hub: Hub):
    inbox = await make_email_inbox(hub, auto_ack=True)
    bounce = inbound(
        "bounce of something",
        sender="mailer-daemon@mx.test",
        automatic=True,
        bounce=Bounce("never-sent@shop.test", None, "5.0.0", None),
    )
    result = await hub.email.ingest(inbox, bounce)
    assert result.outcome == "unmatched" and result.conversation_id is None
    async with hub.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(email_outbox)) == 0


async def test_our_own_mail_coming_back_is_dropped(hub: Hub, agent: Agent):
    inbox = await make_email_inbox(hub)
    first = await hub.email.ingest(inbox, inbound())
    await hub.conversations.reply(agent, first.conversation_id, "Answer")
    [ours] = await _outgoing(hub, first.conversation_id)
    looped = await hub.email.ingest(inbox, inbound("Answer", message_id=ours.message_id))
    assert looped.outcome == "own"
    assert len(await hub.conversations.messages(first.conversation_id)) == 2


async def test_an_unreadable_message_is_kept_and_shown_as_such(hub: Hub):
    inbox = await make_email_inbox(hub)
    broken = inbound("\x00garbage", parse_error="no readable MIME structure", visible_text="")
    result = await hub.email.ingest(inbox, broken)
    [message] = await hub.conversations.messages(result.conversation_id)
    assert "could not be read" in message.text
    [details] = (await hub.email.details(result.conversation_id)).values()
    assert details.parse_error == "no readable MIME structure"
    async with hub.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(email_raw)) == 1


async def test_received_attachments_are_stored_and_served(hub: Hub):
    inbox = await make_email_inbox(hub)
    files = (
        Attachment("invoice.pdf", "application/pdf", b"%PDF"),
        Attachment("logo.png", "image/png", b"\x89PNG", content_id="logo@x", inline=True),
    )
    result = await hub.email.ingest(
        inbox, inbound(attachments=files, html='<img src="cid:logo@x">')
    )
    [details] = (await hub.email.details(result.conversation_id)).values()
    assert [(a["filename"], a["size"], a["inline"]) for a in details.attachments] == [
        ("invoice.pdf", 4, False),
        ("logo.png", 4, True),
    ]
    conversation_id, pdf = await hub.email.attachment(details.attachments[0]["id"])
    assert conversation_id == result.conversation_id and pdf.data == b"%PDF"
    assert await hub.email.inline_images(details.id) == {"logo@x": details.attachments[1]["id"]}


async def _chat(hub: Hub, website, email: str | None = "nora@customer.test"):  # type: ignore[no-untyped-def]
    visitor = await hub.visitors.create(website, user_agent="test")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(
            inbox_id=website.id,
            text="Do you ship to Norway?",
            client_id="c1",
            visitor_id=visitor.id,
            contact=ContactDetails(name="Nora", email=email),
        )
    )
    return visitor, posted.conversation.id


async def test_a_web_chat_continues_by_email_when_the_visitor_is_away(
    hub: Hub, agent: Agent, website
):
    inbox = await make_email_inbox(hub)
    await hub.inboxes.continue_by_email(website.id, inbox.id)
    _visitor, conversation_id = await _chat(hub, website)
    # The away form's address is only claimed: no mail to it before an agent confirms it.
    await hub.conversations.reply(agent, conversation_id, "Which town?")
    assert await hub.email.thread(conversation_id) is None
    conversation = await hub.conversations.get(conversation_id)
    await hub.contacts.update(conversation.contact_id, "Nora", "nora@customer.test")
    await hub.conversations.reply(agent, conversation_id, "Yes, we do!")
    [ours] = await _outgoing(hub, conversation_id)
    assert ours.to == ("nora@customer.test",)
    thread = await hub.email.thread(conversation_id)
    assert thread["subject"] == "Your conversation with Acme shop"
    answer = await hub.email.ingest(
        inbox,
        inbound("Great, thanks", sender="nora@customer.test", in_reply_to=(ours.message_id,)),
    )
    assert answer.conversation_id == conversation_id
    # The visitor's widget shows the emailed answer too: it is in their conversation.
    public = await hub.conversations.messages(conversation_id, include_private=False)
    assert public[-1].text == "Great, thanks"


async def test_a_visitor_on_the_site_gets_no_email(hub: Hub, agent: Agent, website, clock):
    inbox = await make_email_inbox(hub)
    await hub.inboxes.continue_by_email(website.id, inbox.id)
    visitor, conversation_id = await _chat(hub, website, email=None)
    # Known by email from an earlier visit, but chatting live now (no away form).
    await hub.contacts.update(
        (await hub.conversations.get(conversation_id)).contact_id, "Nora", "nora@customer.test"
    )
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.conversations.reply(agent, conversation_id, "Hello there")
    assert await _outgoing(hub, conversation_id) == []
    assert await hub.email.thread(conversation_id) is None


async def test_a_known_address_gets_the_answer_by_email_once_the_visitor_left(
    hub: Hub, agent: Agent, website
):
    inbox = await make_email_inbox(hub)
    await hub.inboxes.continue_by_email(website.id, inbox.id)
    _visitor, conversation_id = await _chat(hub, website, email=None)
    contact_id = (await hub.conversations.get(conversation_id)).contact_id
    await hub.contacts.update(contact_id, "Nora", "nora@customer.test")
    await hub.conversations.reply(agent, conversation_id, "Still there?")  # not on the site
    [ours] = await _outgoing(hub, conversation_id)
    assert ours.to == ("nora@customer.test",)


async def test_an_away_form_answer_goes_by_email_even_while_on_the_site(
    hub: Hub, agent: Agent, website, clock
):
    """To an address typed in the away form that is a real mailbox: one that has
    written to us before (any other typed address waits for an agent's confirmation)."""
    inbox = await make_email_inbox(hub)
    await hub.inboxes.continue_by_email(website.id, inbox.id)
    await hub.email.ingest(inbox, inbound(sender="nora@customer.test", name="Nora"))
    visitor, conversation_id = await _chat(hub, website)  # sent with the away form's address
    await hub.tracking.arrive(visitor, website, "https://shop.test/", "Home")
    await hub.conversations.reply(agent, conversation_id, "Sorry we were out; yes!")
    [ours] = await _outgoing(hub, conversation_id)
    assert ours.to == ("nora@customer.test",)


async def test_a_chat_without_an_email_address_or_email_inbox_stays_a_chat(
    hub: Hub, agent: Agent, website
):
    _visitor, no_address = await _chat(hub, website, email=None)
    await hub.conversations.reply(agent, no_address, "Hello")
    assert await hub.email.thread(no_address) is None
    _visitor, no_inbox = await _chat(hub, website)
    await hub.conversations.reply(agent, no_inbox, "Hello")
    assert await hub.email.thread(no_inbox) is None


async def test_attachments_in_a_chat_without_email_are_refused(hub: Hub, agent: Agent, website):
    _visitor, conversation_id = await _chat(hub, website, email=None)
    pdf = Attachment("a.pdf", "application/pdf", b"%PDF")
    with pytest.raises(InvalidInput, match="email"):
        await hub.conversations.reply(agent, conversation_id, "file", attachments=[pdf])
    assert len(await hub.conversations.messages(conversation_id)) == 1


async def test_without_a_from_header_the_envelope_sender_is_the_contact(hub: Hub):
    inbox = await make_email_inbox(hub)
    headless = replace(inbound(), sender=None)
    result = await hub.email.ingest(inbox, headless, Envelope((SUPPORT,), "Bob@Customer.test"))
    conversation = await hub.conversations.get(result.conversation_id)
    assert conversation.contact_email == "bob@customer.test"
    assert (await hub.email.thread(result.conversation_id))["participants"] == ["bob@customer.test"]


async def test_a_ticket_token_beyond_any_id_opens_a_new_ticket(hub: Hub):
    inbox = await make_email_inbox(hub)
    # 10 digits do not fit PostgreSQL's integer: the lookup must not even be tried.
    result = await hub.email.ingest(inbox, inbound("hi", subject="Re: [#9999999999] [#0]"))
    assert result.outcome == "new"
