"""The inbound pipeline's rules that need no database: what an entry does to its
conversation, what a stored item tells, and how email threads."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.conversations.log import REOPENED, Entry
from hub.conversations.pipeline import Received, Thread
from hub.email.models import Address, Envelope, InboundEmail
from hub.email.threading import referenced_ids, reply_tokens, ticket_in_subject
from hub.models import AuthorType, Channel, Conversation, Direction, Kind, Message, Status

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def conversation(channel: Channel = Channel.WEBSITE) -> Conversation:
    return Conversation(
        id=7,
        inbox_id=1,
        inbox_name="Shop",
        contact_id=3,
        contact_name=None,
        contact_email=None,
        visitor_id="v_1" if channel is Channel.WEBSITE else None,
        status=Status.OPEN,
        assignee_id=None,
        assignee_name=None,
        last_seq=1,
        visitor_read_seq=0,
        preview="hi",
        created_at=NOW,
        last_activity_at=NOW,
        channel=channel,
    )


def message(seq: int = 1) -> Message:
    return Message(
        conversation_id=7,
        seq=seq,
        direction=Direction.IN,
        kind=Kind.TEXT,
        author_type=AuthorType.VISITOR,
        author_id=None,
        author_name=None,
        text="hi",
        client_id=None,
        created_at=NOW,
    )


def test_what_the_customer_writes_reopens_and_counts_as_unread_an_activity_does_neither():
    said = Entry.from_customer("hello", AuthorType.CONTACT)
    assert (said.direction, said.reopens, said.previews) == (Direction.IN, True, True)
    line = Entry.activity("Sam resolved the conversation", {"status": "resolved"})
    assert (line.direction, line.reopens, line.previews) == (Direction.OUT, False, False)
    assert REOPENED == {"status": "open", "snoozed_until": None, "resolved_at": None}


def test_a_new_chat_tells_created_and_started_a_new_ticket_only_created():
    chat = Received(Thread(3, 7, opened=True), message(), conversation(Channel.WEBSITE))
    assert [e.name for e in chat.events()] == [
        "message.created",
        "conversation.created",
        "visitor.started_chat",
    ]
    ticket = Received(Thread(3, 7, opened=True), message(), conversation(Channel.EMAIL))
    assert [e.name for e in ticket.events()] == ["message.created", "conversation.created"]


def test_a_reopened_conversation_tells_updated_a_going_one_only_the_message():
    going = Thread(3, 7, opened=False)
    assert [e.name for e in Received(going, message(), conversation()).events()] == [
        "message.created"
    ]
    reopened = Received(going, message(), conversation(), reopened=True)
    assert [e.name for e in reopened.events()] == ["message.created", "conversation.updated"]


def test_a_resend_tells_nothing_and_openers_and_answers_frame_the_message_in_order():
    assert Received(Thread(3, 7, False), message(), conversation(), duplicate=True).events() == []
    opener, ack = message(1), message(3)
    told = Received(
        Thread(3, 7, True, openers=(opener,)), message(2), conversation(Channel.EMAIL), after=[ack]
    ).events()
    assert [(e.name, getattr(e, "message", None)) for e in told] == [
        ("message.created", opener),
        ("message.created", message(2)),
        ("conversation.created", None),
        ("message.created", ack),
    ]


def test_an_email_threads_by_its_latest_reference_first_without_repeats():
    email = InboundEmail(raw=b"", message_id="m3", in_reply_to=("m2",), references=("m1", "m2"))
    assert referenced_ids(email) == ("m2", "m1")


def test_reply_tokens_come_from_every_address_the_mail_was_sent_to():
    def token_in(address: str) -> str | None:
        local, _, domain = address.partition("@")
        base, _, token = local.partition("+")
        return token or None if base == "support" and domain == "shop.test" else None

    email = InboundEmail(
        raw=b"",
        message_id="m",
        to=(Address("support+abc@shop.test"),),
        cc=(Address("someone+xyz@else.test"),),
        delivered_to=("support+def@shop.test",),
    )
    envelope = Envelope(recipients=("support+abc@shop.test", "support@shop.test"))
    assert reply_tokens(token_in, email, envelope) == ["abc", "def"]


def test_a_ticket_number_in_the_subject_must_fit_the_store():
    assert ticket_in_subject("Re: [#42] Where is my order") == 42
    assert ticket_in_subject("[#0] then [#17]") == 17
    assert ticket_in_subject("[#99999999999]") is None  # beyond a 32-bit key
    assert ticket_in_subject("no number") is None


def test_a_contact_the_resolver_created_is_told_first():
    thread = Thread(3, 7, opened=True, contact_created=True)
    told = Received(thread, message(), conversation(Channel.EMAIL)).events()
    assert [e.name for e in told] == ["contact.created", "message.created", "conversation.created"]
    assert told[0].contact_id == 3  # type: ignore[attr-defined]
