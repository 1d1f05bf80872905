"""One contract for every write that tells: nothing is told before its COMMIT, and
nothing at all when the COMMIT fails. On both engines (tests/engines.py).

Each service method below that writes the store and tells agents or visitors
(domain events through the hub's Publisher, frames on the bus) is driven from
the Hub object's public services, and the same call is run twice on one hub:

1. Its COMMIT refused. Every table of the store gets a check deferred to COMMIT
   that fails (a deferred foreign key on SQLite, a deferred constraint trigger
   on PostgreSQL): each statement of the call succeeds and the COMMIT itself is
   refused, on whichever connection the hub commits. No frame may reach the
   bus (read up to a marker the test publishes after the call), no listener of
   the Publisher may hear an event, the store must hold exactly what it held
   before, and the call must raise an error caused by the refusal (or answer
   as it does when it did nothing).
2. Allowed (the checks dropped). A listener on the engine's COMMIT
   (SQLAlchemy's "commit" event on `hub.db.engine.sync_engine`, which fires as
   the COMMIT is issued) notes how many events the Publisher has told so far
   and puts a marker on every bus channel read, behind the frames published
   before it. Nothing may have been told at the first COMMIT and no frame may
   come before it. Every domain event must also describe what another
   connection already sees in the store (its message, conversation, contact or
   call): this holds where a write commits outside SQLAlchemy too (web chat's
   inline path on SQLite, where no "commit" event fires). The events and the
   frames told are exactly the ones listed.

A refused COMMIT comes back as a HubError (Unavailable: nothing was stored).

Covered (test ids in brackets):

- ConversationService.ingest: a visitor's first web chat message, opening a
  conversation [chat-first-message]; a message to the going conversation
  (SQLite: the inline path of hub/conversations/chat_ingest_sqlite.py)
  [chat-message]; a message reopening a resolved conversation [chat-reopens]
- AgentAccounts.deactivate, ending the agent's sessions and unassigning their
  open conversation [deactivate]; set_availability [availability]
- ConversationService.reply [reply], a private note [private-note],
  start_proactive [start-proactive], assign [assign], set_status
  [resolve, snooze], wake_snoozed [wake-snoozed], mark_read_by_agent
  [read-by-agent], mark_read_by_visitor [read-by-visitor]
- EmailTicketService.ingest: a new ticket with its acknowledgement queued as
  mail [email-new-ticket], a reply joining (and reopening) a ticket
  [email-joins-ticket], a bounce failing our outgoing message [email-bounce]
- ConversationService.reply on an email ticket, which queues the mail [email-reply]
- EmailOutbox.retry [outbox-retry], EmailOutbox.deliver_due [outbox-deliver]
- CallService.record: a ringing call with its screen pop [call-ring], a missed
  call [call-missed]; record_many [call-import]; log_by_hand with its note
  [call-by-hand]; mark_called_back [called-back]; close_stale [close-stale]
- ContactService.update [contact-update]
- VisitorService.identify, a verified claim [identify]
- TrackingService.arrive (a new visit and its first page) [arrive] and
  page_view [page-view]; CampaignService.fire [campaign]

Not here, as they write but tell nothing: ContactService.add_phone,
VisitorService.create / seen / set_attributes, CampaignService.create /
update, TrackingService.cleanup, and the admin services (agents, inboxes,
email inboxes, phone lines, business hours). TrackingService.sweep tells
`visitor_left` even when storing the departures failed, on purpose (presence
is not the store; see its code).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import hub.agents.service
from hub.core import Hub
from hub.email.models import Bounce, Envelope
from hub.errors import HubError
from hub.events import topics
from hub.events.bus import Subscription
from hub.events.domain import (
    Assigned,
    CallMissed,
    CallUpdated,
    ContactCreated,
    ContactUpdated,
    ConversationCreated,
    ConversationUpdated,
    DomainEvent,
    MessageCreated,
    StatusChanged,
    VisitorStartedChat,
)
from hub.models import Agent, Availability, Direction, Inbox, Role, Status, Visitor, utcnow
from hub.security import hash_password, identity_hash
from hub.voice.models import CallEvent, Outcome, Step
from storage.tables import calls, contacts, conversations, messages, metadata
from tests.console_client import AGENT_PASSWORD, visitor_says
from tests.email_helpers import SUPPORT, inbound, make_email_inbox
from tests.engines import settings  # noqa: F401 - runs every test on both engines

# Generous: only reached when something is broken.
WAIT_SECONDS = 5
COMMIT_MARKER = {"type": "test_commit"}
END_MARKER = {"type": "test_end"}
REFUSED = ("FOREIGN KEY constraint failed", "refused at commit")


_hash_once = functools.cache(hash_password)


@pytest.fixture(autouse=True)
def _one_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents are made by AgentService.create, with the argon2 hash of the one test
    password computed once (about half a second each on a small machine)."""
    monkeypatch.setattr(hub.agents.service, "hash_password", _hash_once)


# ---- the writes ------------------------------------------------------------------------------


@dataclass
class Stage:
    """A write ready to run: `act` makes the call; the channels it may tell on."""

    act: Callable[[], Awaitable[object]]
    visitor_id: str | None = None  # its visitor's channel is read too
    agent_id: int | None = None  # and its agent's
    sessions_of: int | None = None  # and the channel that ends this agent's sessions


@dataclass(frozen=True)
class Write:
    id: str
    arrange: Callable[[Hub], Awaitable[Stage]]
    told: tuple[str, ...]  # the domain events' names, in order
    frames: tuple[tuple[str, str], ...]  # (channel, frame type), in order
    # What the call answers, instead of raising, when its COMMIT is refused.
    refused_returns: tuple[object, ...] = ()
    # SQLite: commits on a connection of its own, outside SQLAlchemy (no "commit" event).
    inline_on_sqlite: bool = False


WRITES: list[Write] = []


def write(
    id: str,
    told: tuple[str, ...],
    frames: tuple[tuple[str, str], ...],
    **options: Any,
) -> Callable[[Callable[[Hub], Awaitable[Stage]]], Callable[[Hub], Awaitable[Stage]]]:
    def register(arrange: Callable[[Hub], Awaitable[Stage]]) -> Callable[[Hub], Awaitable[Stage]]:
        WRITES.append(Write(id, arrange, told, frames, **options))
        return arrange

    return register


# Frames as the publisher sends them (hub/events/publisher.py), by channel.
MESSAGE = (("agents", "message"), ("visitor", "message"))
NOTE = (("agents", "message"),)  # private notes and activity lines: agents only
CONVERSATION = (("agents", "conversation"), ("visitor", "conversation"))
TICKET_MESSAGE = (("agents", "message"),)  # no visitor on an email ticket or a call
TICKET = (("agents", "conversation"),)


async def new_agent(hub: Hub) -> Agent:
    return await hub.agents.create("sam@example.com", "Sam Agent", AGENT_PASSWORD, Role.AGENT)


async def new_website(hub: Hub) -> Inbox:
    return await hub.inboxes.create_website("Acme shop", ["http://shop.test"])


async def new_chat(hub: Hub) -> tuple[Agent, Inbox, Visitor, int]:
    """An agent, and a visitor's conversation on the website (one message)."""
    agent, website = await new_agent(hub), await new_website(hub)
    visitor, posted = await visitor_says(hub, website, "Hello?", client_id="c-1")
    return agent, website, visitor, posted.conversation.id


@write(
    "chat-first-message",
    told=("message.created", "conversation.created", "visitor.started_chat"),
    frames=MESSAGE + CONVERSATION,
)
async def _chat_first_message(hub: Hub) -> Stage:
    website = await new_website(hub)
    visitor = await hub.visitors.create(website, "pytest")
    return Stage(lambda: visitor_says(hub, website, "Hello?", visitor, "c-1"), visitor.id)


@write("chat-message", told=("message.created",), frames=MESSAGE, inline_on_sqlite=True)
async def _chat_message(hub: Hub) -> Stage:
    _agent, website, visitor, _ = await new_chat(hub)
    return Stage(lambda: visitor_says(hub, website, "Anyone?", visitor, "c-2"), visitor.id)


@write(
    "chat-reopens",
    told=("message.created", "conversation.updated"),
    frames=MESSAGE + CONVERSATION,
    inline_on_sqlite=True,
)
async def _chat_reopens(hub: Hub) -> Stage:
    agent, website, visitor, conversation_id = await new_chat(hub)
    await hub.conversations.set_status(agent, conversation_id, Status.RESOLVED)
    return Stage(lambda: visitor_says(hub, website, "One more thing", visitor, "c-2"), visitor.id)


@write("reply", told=("message.created",), frames=MESSAGE)
async def _reply(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    return Stage(
        lambda: hub.conversations.reply(agent, conversation_id, "On it!", client_id="r-1"),
        visitor.id,
    )


@write("private-note", told=("message.created",), frames=NOTE)
async def _private_note(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    return Stage(
        lambda: hub.conversations.reply(agent, conversation_id, "VIP", private=True), visitor.id
    )


@write(
    "start-proactive",
    told=("conversation.created", "message.created"),
    frames=(*CONVERSATION, *MESSAGE, ("visitor", "open")),
)
async def _start_proactive(hub: Hub) -> Stage:
    agent, website = await new_agent(hub), await new_website(hub)
    visitor = await hub.visitors.create(website, "pytest")
    return Stage(
        lambda: hub.conversations.start_proactive(agent, visitor.id, "Can I help?"), visitor.id
    )


@write("assign", told=("message.created", "conversation.assigned"), frames=NOTE + CONVERSATION)
async def _assign(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    return Stage(lambda: hub.conversations.assign(agent, conversation_id, agent.id), visitor.id)


@write(
    "deactivate",
    told=("message.created", "conversation.assigned"),
    frames=(("sessions", "sessions_ended"), *NOTE, *CONVERSATION),
)
async def _deactivate(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    admin = await hub.agents.create("ada@example.com", "Ada", AGENT_PASSWORD, Role.ADMIN)
    await hub.conversations.assign(agent, conversation_id, agent.id)
    return Stage(lambda: hub.accounts.deactivate(admin, agent.id), visitor.id, sessions_of=agent.id)


@write("availability", told=(), frames=(("agents", "agent_availability"),))
async def _availability(hub: Hub) -> Stage:
    agent = await new_agent(hub)
    return Stage(lambda: hub.accounts.set_availability(agent, Availability.BUSY))


@write(
    "resolve", told=("message.created", "conversation.status_changed"), frames=NOTE + CONVERSATION
)
async def _resolve(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    return Stage(
        lambda: hub.conversations.set_status(agent, conversation_id, Status.RESOLVED), visitor.id
    )


@write(
    "snooze", told=("message.created", "conversation.status_changed"), frames=NOTE + CONVERSATION
)
async def _snooze(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    until = utcnow() + timedelta(hours=1)
    return Stage(
        lambda: hub.conversations.set_status(agent, conversation_id, Status.SNOOZED, until),
        visitor.id,
    )


@write(
    "wake-snoozed",
    told=("message.created", "conversation.status_changed"),
    frames=NOTE + CONVERSATION,
)
async def _wake_snoozed(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    until = utcnow() + timedelta(hours=1)
    await hub.conversations.set_status(agent, conversation_id, Status.SNOOZED, until)
    return Stage(lambda: hub.conversations.wake_snoozed(until + timedelta(minutes=1)), visitor.id)


@write("read-by-agent", told=(), frames=(("visitor", "read"),))
async def _read_by_agent(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    return Stage(
        lambda: hub.conversations.mark_read_by_agent(agent, conversation_id, 1), visitor.id
    )


@write("read-by-visitor", told=(), frames=(("agents", "read"),))
async def _read_by_visitor(hub: Hub) -> Stage:
    agent, _website, visitor, conversation_id = await new_chat(hub)
    await hub.conversations.reply(agent, conversation_id, "On it!")
    return Stage(
        lambda: hub.conversations.mark_read_by_visitor(visitor.id, conversation_id, 2), visitor.id
    )


# ---- email ----


async def new_ticket(hub: Hub) -> tuple[Any, int, str]:
    """An email ticket (one message, no acknowledgement); its inbox, id and the
    Message-ID of its first message."""
    inbox = await make_email_inbox(hub)
    first = inbound(message_id="first@customer.test")
    result = await hub.email.ingest(inbox, first)
    assert result.outcome == "new" and result.conversation_id is not None
    return inbox, result.conversation_id, "first@customer.test"


async def queued_reply(hub: Hub) -> tuple[Agent, Any, int, Any]:
    """An email ticket with an agent's reply queued as mail; the reply's details."""
    agent = await new_agent(hub)
    inbox, conversation_id, _ = await new_ticket(hub)
    posted = await hub.conversations.reply(agent, conversation_id, "It ships today.")
    ours = (await hub.email.details(conversation_id))[posted.message.seq]
    return agent, inbox, conversation_id, ours


@write(
    "email-new-ticket",
    told=("contact.created", "message.created", "conversation.created", "message.created"),
    frames=(*TICKET_MESSAGE, *TICKET, *TICKET_MESSAGE, ("outbox", "queued")),
)
async def _email_new_ticket(hub: Hub) -> Stage:
    inbox = await make_email_inbox(hub, auto_ack=True)  # the acknowledgement is queued mail
    return Stage(lambda: hub.email.ingest(inbox, inbound(sender="pat@customer.test")))


@write(
    "email-joins-ticket",
    told=("message.created", "conversation.updated"),
    frames=TICKET_MESSAGE + TICKET,
)
async def _email_joins_ticket(hub: Hub) -> Stage:
    agent = await new_agent(hub)
    inbox, conversation_id, first = await new_ticket(hub)
    await hub.conversations.set_status(agent, conversation_id, Status.RESOLVED)
    again = inbound("Still nothing.", in_reply_to=(first,))
    return Stage(lambda: hub.email.ingest(inbox, again))


@write("email-bounce", told=("message.created",), frames=(*TICKET_MESSAGE, ("agents", "email")))
async def _email_bounce(hub: Hub) -> Stage:
    _agent, inbox, _conversation_id, ours = await queued_reply(hub)
    return Stage(lambda: hub.email.ingest(inbox, bounce_of(ours), NULL_SENDER))


NULL_SENDER = Envelope((SUPPORT,), mail_from="")  # how bounces arrive: MAIL FROM:<>


def bounce_of(ours: Any) -> Any:
    """A delivery failure report for our outgoing message `ours` (its details)."""
    return inbound(
        "Delivery failed",
        sender="mailer-daemon@mx.customer.test",
        subject="Undelivered Mail Returned to Sender",
        automatic=True,
        bounce=Bounce(ours.message_id, "alice@customer.test", "5.1.1", "550 5.1.1 no such user"),
    )


@write(
    "email-reply",
    told=("message.created",),
    frames=(*TICKET_MESSAGE, ("agents", "email"), ("outbox", "queued")),
)
async def _email_reply(hub: Hub) -> Stage:
    agent = await new_agent(hub)
    _inbox, conversation_id, _ = await new_ticket(hub)
    return Stage(lambda: hub.conversations.reply(agent, conversation_id, "It ships today."))


@write("outbox-retry", told=(), frames=(("agents", "email"), ("outbox", "queued")))
async def _outbox_retry(hub: Hub) -> Stage:
    _agent, inbox, conversation_id, ours = await queued_reply(hub)
    failed = await hub.email.ingest(inbox, bounce_of(ours), NULL_SENDER)
    assert failed.outcome == "bounce"
    return Stage(lambda: hub.outbox.retry(conversation_id, ours.seq))


@write("outbox-deliver", told=(), frames=(("agents", "email"),))
async def _outbox_deliver(hub: Hub) -> Stage:
    # The inbox has no SMTP server: the attempt is recorded, to be tried again.
    await queued_reply(hub)
    return Stage(hub.outbox.deliver_due)


# ---- calls ----

CALLER = "+44 20 7946 0018"


def call_event(step: Step, call_id: str = "c1", **fields: Any) -> CallEvent:
    fields.setdefault("at", utcnow())
    return CallEvent(
        step=step,
        external_id=call_id,
        source="cti",
        direction=Direction.IN,
        from_number=CALLER,
        to_number="+44 20 7946 0000",
        **fields,
    )


async def new_line(hub: Hub) -> Any:
    line, _token = await hub.phone_lines.create("Support line", ["+44 20 7946 0000"], "GB")
    return line


MISSED = ("message.created", "conversation.updated", "call.updated", "call.missed")
MISSED_FRAMES = (*TICKET_MESSAGE, *TICKET, ("agents", "call"))


@write(
    "call-ring",
    told=("contact.created", "conversation.created", "call.updated"),
    frames=(*TICKET, ("agents", "call"), ("agent", "call_ringing")),
)
async def _call_ring(hub: Hub) -> Stage:
    agent, line = await new_agent(hub), await new_line(hub)
    ring = call_event(Step.RING, agents=(agent.name,))
    return Stage(lambda: hub.calls.record(line, ring), agent_id=agent.id)


@write("call-missed", told=MISSED, frames=MISSED_FRAMES)
async def _call_missed(hub: Hub) -> Stage:
    line = await new_line(hub)
    await hub.calls.record(line, call_event(Step.RING))
    return Stage(lambda: hub.calls.record(line, call_event(Step.HANGUP, cause="noAnswer")))


@write("call-import", told=("contact.created",), frames=(("agents", "calls_imported"),))
async def _call_import(hub: Hub) -> Stage:
    line = await new_line(hub)
    now = utcnow()
    rows = [
        call_event(
            Step.COMPLETE,
            f"cdr-{n}",
            at=now - timedelta(minutes=n),
            started_at=now - timedelta(minutes=n + 1),
            outcome=Outcome.MISSED,
        )
        for n in range(3)
    ]
    return Stage(lambda: hub.calls.record_many(line, rows))


@write(
    "call-by-hand",
    told=(
        "contact.created",
        "conversation.created",
        "message.created",
        "call.updated",
        "message.created",
    ),
    frames=(*TICKET, *TICKET_MESSAGE, ("agents", "call"), *TICKET_MESSAGE),
)
async def _call_by_hand(hub: Hub) -> Stage:
    agent, line = await new_agent(hub), await new_line(hub)
    return Stage(
        lambda: hub.calls.log_by_hand(
            agent,
            line,
            direction=Direction.IN,
            number=CALLER,
            started_at=utcnow() - timedelta(minutes=10),
            duration_seconds=90,
            outcome=Outcome.ANSWERED,
            notes="Wants a refund",
            client_id="h-1",
        )
    )


@write(
    "called-back",
    told=("message.created", "conversation.updated", "call.updated"),
    frames=(*TICKET_MESSAGE, *TICKET, ("agents", "call")),
)
async def _called_back(hub: Hub) -> Stage:
    agent, line = await new_agent(hub), await new_line(hub)
    missed = await hub.calls.record(line, call_event(Step.HANGUP, cause="noAnswer"))
    assert missed.call is not None and missed.call.waiting_for_call_back
    call_id = missed.call.id
    return Stage(lambda: hub.calls.mark_called_back(agent, call_id))


@write("close-stale", told=MISSED, frames=MISSED_FRAMES)
async def _close_stale(hub: Hub) -> Stage:
    line = await new_line(hub)
    await hub.calls.record(line, call_event(Step.RING))
    # Four hours and more without news: closed as if its hangup had come.
    return Stage(lambda: hub.calls.close_stale(utcnow() + timedelta(hours=5)))


# ---- contacts, visitors, tracking, campaigns ----


@write("contact-update", told=("contact.updated",), frames=(("agents", "contact"),))
async def _contact_update(hub: Hub) -> Stage:
    visitor = await hub.visitors.create(await new_website(hub), "pytest")
    return Stage(lambda: hub.contacts.update(visitor.contact_id, "Ann Lee", "ann@example.com"))


@write("identify", told=("contact.updated",), frames=(("agents", "contact"),))
async def _identify(hub: Hub) -> Stage:
    website = await new_website(hub)
    assert website.identity_secret
    visitor = await hub.visitors.create(website, "pytest")
    signed = identity_hash(website.identity_secret, "user-7")
    return Stage(
        lambda: hub.visitors.identify(
            visitor, website, "user-7", email="ann@example.com", name="Ann", claimed_hash=signed
        )
    )


@write("arrive", told=(), frames=(("visitors", "visitor"),))
async def _arrive(hub: Hub) -> Stage:
    website = await new_website(hub)
    visitor = await hub.visitors.create(website, "pytest")
    return Stage(lambda: hub.tracking.arrive(visitor, website, "http://shop.test/", "Home"))


@write("page-view", told=(), frames=(("visitors", "visitor"),))
async def _page_view(hub: Hub) -> Stage:
    website = await new_website(hub)
    visitor = await hub.visitors.create(website, "pytest")
    await hub.tracking.arrive(visitor, website, "http://shop.test/", "Home")
    return Stage(lambda: hub.tracking.page_view(visitor, website, "http://shop.test/pricing"))


@write(
    "campaign",
    told=(),
    frames=(("visitor", "campaign"), ("agents", "campaign_shown")),
    # A refused COMMIT on SQLite is an IntegrityError, which fire() takes for
    # "shown to this visitor before": not shown, nothing told.
    refused_returns=(False,),
)
async def _campaign(hub: Hub) -> Stage:
    website = await new_website(hub)
    campaign = await hub.campaigns.create(
        website.id,
        {
            "name": "Pricing help",
            "message": "Questions about our plans?",
            "sender_name": "Sales team",
            "url_pattern": "/pricing",
            "min_seconds": 3600,  # its own timer never fires during the test
        },
    )
    visitor = await hub.visitors.create(website, "pytest")
    page = await hub.tracking.arrive(visitor, website, "http://shop.test/pricing")
    hub.campaigns.cancel(visitor.id)
    page_id = page["page"]["id"]
    return Stage(lambda: hub.campaigns.fire(campaign, website.id, visitor.id, page_id), visitor.id)


# ---- what the hub tells, and when ------------------------------------------------------------


@dataclass
class Told:
    """What one call told, and when."""

    events: list[str]  # the domain events' names, as the Publisher's listeners heard them
    not_yet_stored: list[str]  # those told before another connection saw what they say
    told_at_commit: list[int]  # how many had been told as each COMMIT was issued
    early: list[tuple[str, str]]  # (channel, type) of frames before their channel's COMMIT
    late: list[tuple[str, str]]  # and after it
    raised: BaseException | None
    answered: object = None


class Witness:
    """Runs a call and sees what it tells: each domain event as the Publisher hands
    it to its listeners (checking that another connection already sees what it
    says), each frame on the bus channels read, and a marker on those channels
    at each COMMIT the engine issues, in order with the frames published before."""

    def __init__(self, hub: Hub, channels: dict[str, str]) -> None:
        self.hub = hub
        self.channels = channels
        self._events: list[DomainEvent] = []
        self._not_yet_stored: list[str] = []
        self._told_at_commit: list[int] = []
        self._failures: list[BaseException] = []
        hub.publisher.listen(self._hear)

    async def _hear(self, event: DomainEvent) -> None:
        self._events.append(event)
        try:
            if not await stored(self.hub, event):
                self._not_yet_stored.append(event.name)
        except BaseException as exc:  # the publisher would only log it
            self._failures.append(exc)
            raise

    def _on_commit(self, conn: sa.Connection) -> None:
        """As the engine issues a COMMIT (before the database has it)."""
        self._told_at_commit.append(len(self._events))
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        for channel in self.channels.values():
            dbapi.run_async(lambda _driver, c=channel: self.hub.bus.publish(c, COMMIT_MARKER))

    async def run(self, act: Callable[[], Awaitable[object]]) -> Told:
        self._events, self._not_yet_stored, self._told_at_commit = [], [], []
        engine = self.hub.db.engine.sync_engine
        raised: BaseException | None = None
        answered: object = None
        async with self.hub.bus.subscribe(*self.channels.values()) as subscription:
            sa.event.listen(engine, "commit", self._on_commit)
            try:
                answered = await act()
            except Exception as exc:
                raised = exc
            finally:
                sa.event.remove(engine, "commit", self._on_commit)
            early, late = await self._frames(subscription)
        assert self._failures == []
        return Told(
            [e.name for e in self._events],
            self._not_yet_stored,
            self._told_at_commit,
            early,
            late,
            raised,
            answered,
        )

    async def _frames(self, subscription: Subscription) -> tuple[list, list]:
        """Every frame up to the end marker (published now on every channel), as
        (channel label, type): those before their channel's first COMMIT marker,
        and those after it."""
        for channel in self.channels.values():
            await self.hub.bus.publish(channel, END_MARKER)
        labels = {name: label for label, name in self.channels.items()}
        committed: set[str] = set()
        ended: set[str] = set()
        early: list[tuple[str, str]] = []
        late: list[tuple[str, str]] = []
        async with asyncio.timeout(WAIT_SECONDS):
            while len(ended) < len(self.channels):
                event = await subscription.get()
                frame = event.json()
                if frame == END_MARKER:
                    ended.add(event.channel)
                elif frame == COMMIT_MARKER:
                    committed.add(event.channel)
                else:
                    seen = (labels[event.channel].split("#")[0], frame["type"])
                    (late if event.channel in committed else early).append(seen)
        return early, late


CONVERSATION_EVENTS = (
    ConversationCreated,
    ConversationUpdated,
    StatusChanged,
    Assigned,
    VisitorStartedChat,
)


async def stored(hub: Hub, event: DomainEvent) -> bool:
    """Whether a connection of its own sees in the store what `event` says."""
    async with hub.db.read() as conn:
        if isinstance(event, MessageCreated):
            text = await conn.scalar(
                sa.select(messages.c.text)
                .where(messages.c.conversation_id == event.message.conversation_id)
                .where(messages.c.seq == event.message.seq)
            )
            return text == event.message.text
        if isinstance(event, CONVERSATION_EVENTS):
            said = event.conversation
            row = (
                await conn.execute(
                    sa.select(
                        conversations.c.status,
                        conversations.c.assignee_id,
                        conversations.c.last_seq,
                        conversations.c.call_back,
                    ).where(conversations.c.id == said.id)
                )
            ).first()
            # (its messages up to the event's at least: a later commit may have added more)
            return (
                row is not None
                and (row.status, row.assignee_id, bool(row.call_back))
                == (said.status.value, said.assignee_id, said.call_back)
                and row.last_seq >= said.last_seq
            )
        if isinstance(event, ContactUpdated):
            row = (
                await conn.execute(
                    sa.select(contacts.c.name, contacts.c.email, contacts.c.external_id).where(
                        contacts.c.id == event.contact.id
                    )
                )
            ).first()
            said_contact = event.contact
            return row is not None and tuple(row) == (
                said_contact.name,
                said_contact.email,
                said_contact.external_id,
            )
        if isinstance(event, ContactCreated):
            found = await conn.scalar(
                sa.select(contacts.c.id).where(contacts.c.id == event.contact_id)
            )
            return found is not None
        if isinstance(event, CallUpdated | CallMissed):
            row = (
                await conn.execute(
                    sa.select(calls.c.state, calls.c.call_back).where(calls.c.id == event.call.id)
                )
            ).first()
            return row is not None and (row.state, bool(row.call_back)) == (
                event.call.state.value,
                event.call.call_back,
            )
    raise AssertionError(f"teach this test what a {event.name} event says is stored")


async def channels_of(hub: Hub, stage: Stage) -> dict[str, str]:
    """Labels and the channels they stand for: every inbox's channels count as
    "agents" and "visitors" (a label's `#n` suffix keeps them apart)."""
    channels = {"agents": topics.AGENTS, "outbox": topics.EMAIL_OUTBOX}
    for inbox in await hub.inboxes.list():
        channels[f"agents#{inbox.id}"] = topics.inbox_channel(inbox.id)
        channels[f"visitors#{inbox.id}"] = topics.site_visitors(inbox.id)
    if stage.visitor_id is not None:
        channels["visitor"] = topics.visitor_channel(stage.visitor_id)
    if stage.agent_id is not None:
        channels["agent"] = topics.agent_channel(stage.agent_id)
    if stage.sessions_of is not None:
        channels["sessions"] = topics.agent_sessions_channel(stage.sessions_of)
    return channels


# ---- refusing every COMMIT -------------------------------------------------------------------


async def refuse_every_commit(hub: Hub) -> None:
    """From now on every transaction that writes any table of the store fails at
    its COMMIT (each statement still succeeds), on every connection."""
    tables = [table.name for table in metadata.sorted_tables]
    async with hub.db.write() as conn:
        if hub.db.is_sqlite:
            await conn.exec_driver_sql("CREATE TABLE test_refusal_parents (id INTEGER PRIMARY KEY)")
            await conn.exec_driver_sql(
                "CREATE TABLE test_refusals (parent INTEGER REFERENCES test_refusal_parents (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
            for table in tables:
                for operation in ("INSERT", "UPDATE", "DELETE"):
                    await conn.exec_driver_sql(
                        f"CREATE TRIGGER test_refuse_{table}_{operation} AFTER {operation} "
                        f"ON {table} BEGIN INSERT INTO test_refusals (parent) VALUES (0); END"
                    )
            return
        await conn.exec_driver_sql(
            "CREATE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
        for table in tables:
            await conn.exec_driver_sql(
                f"CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"EXECUTE FUNCTION test_refuse_at_commit()"
            )


async def everything_stored(hub: Hub) -> dict[str, list[str]]:
    """Every row of every table of the store."""
    async with hub.db.read() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in await conn.execute(sa.select(table)))
            for table in metadata.sorted_tables
        }


def explained(exc: BaseException) -> str:
    """Every message in an exception's chain of causes."""
    said: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(said) < 20:
        said.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(said)


async def allow_every_commit(hub: Hub) -> None:
    """Undo `refuse_every_commit`."""
    async with hub.db.write() as conn:
        if not hub.db.is_sqlite:
            await conn.exec_driver_sql("DROP FUNCTION test_refuse_at_commit() CASCADE")
            return
        for table in metadata.sorted_tables:
            for operation in ("INSERT", "UPDATE", "DELETE"):
                await conn.exec_driver_sql(f"DROP TRIGGER test_refuse_{table.name}_{operation}")
        await conn.exec_driver_sql("DROP TABLE test_refusals")
        await conn.exec_driver_sql("DROP TABLE test_refusal_parents")


# ---- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("write", [pytest.param(w, id=w.id) for w in WRITES])
async def test_told_only_after_its_commit(hub: Hub, write: Write) -> None:
    """The call with its COMMIT refused tells nothing and stores nothing; the same
    call allowed tells what it did, and nothing of it before its COMMIT."""
    stage = await write.arrange(hub)
    witness = Witness(hub, await channels_of(hub, stage))
    # No SQLAlchemy "commit" event where SQLite's inline path commits on its own connection.
    inline = write.inline_on_sqlite and hub.db.is_sqlite

    # 1. Refused at COMMIT.
    await refuse_every_commit(hub)
    before = await everything_stored(hub)
    refused = await witness.run(stage.act)
    assert refused.early == refused.late == [], "told though its COMMIT failed"
    assert refused.events == [], "told though its COMMIT failed"
    assert await everything_stored(hub) == before, "stored though its COMMIT failed"
    if not inline:
        assert refused.told_at_commit, "failed before its COMMIT: not the case this tests"
    if refused.raised is None:
        assert write.refused_returns, f"a refused COMMIT answered {refused.answered!r}"
        assert refused.answered in write.refused_returns, refused.answered
        why = None
    else:
        why = explained(refused.raised)
        assert any(reason in why for reason in REFUSED), why

    # 2. The same call, allowed.
    await allow_every_commit(hub)
    told = await witness.run(stage.act)
    if told.raised is not None:
        raise told.raised
    if inline:
        assert told.told_at_commit == [], "expected its COMMIT outside SQLAlchemy"
    else:
        assert told.told_at_commit, "the call issued no COMMIT"
        assert told.told_at_commit[0] == 0, (
            f"told {told.events[: told.told_at_commit[0]]} before its first COMMIT"
        )
        assert told.early == [], f"frames on the bus before the COMMIT: {told.early}"
    assert told.not_yet_stored == [], "told before another connection could see it"
    assert tuple(told.events) == write.told
    assert tuple(told.early + told.late if inline else told.late) == write.frames

    # What the refused call raised: the hub's own error, saying nothing was stored.
    if refused.raised is not None:
        assert isinstance(refused.raised, HubError), f"a failed COMMIT raised no HubError: {why}"


def test_every_write_is_named_once() -> None:
    ids = [w.id for w in WRITES]
    assert len(ids) == len(set(ids))
