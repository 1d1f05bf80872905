"""Domain values shared by the services, channels and console."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from hub.contacts import phones


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """The time in UTC with its zone: SQLite hands timestamps back without one."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands timestamps back without a zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        # What value.replace(tzinfo=UTC).isoformat() says, a third of the time
        # (two a chat message; the chat path's most frequent formatting).
        return value.isoformat() + "+00:00"
    return value.isoformat()


class Status(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class Kind(enum.StrEnum):
    TEXT = "text"
    NOTE = "note"
    ACTIVITY = "activity"
    CALL = "call"


class AuthorType(enum.StrEnum):
    VISITOR = "visitor"
    CONTACT = "contact"
    AGENT = "agent"
    SYSTEM = "system"
    CAMPAIGN = "campaign"  # a proactive campaign's message (author_id: the campaign)


class Role(enum.StrEnum):
    """admin: everything; manager: reads every inbox, works in their own; agent:
    reads and works in their own inboxes only (hub/agents/access.py)."""

    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"


class Availability(enum.StrEnum):
    """What an agent says about themself; offline while no console of theirs is open."""

    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


class Channel(enum.StrEnum):
    WEBSITE = "website"
    VOICE = "voice"
    EMAIL = "email"


@dataclass(frozen=True)
class ContactDetails:
    """What a sender told us about themself (all optional)."""

    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Sender:
    """Who a message or call comes from, as the channel knows them: a visitor of
    the site, an email address, a phone number or another system's id."""

    visitor_id: str | None = None
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ChatDetails:
    """What only a web chat message carries."""

    conversation_id: int | None = None  # the conversation the widget shows, if any
    contact: ContactDetails | None = None  # the away form's name and email
    campaign_id: int | None = None  # the proactive campaign this answers


@dataclass(frozen=True)
class Inbound:
    """One message or call arriving from any channel, normalized by its adapter:
    the one type every channel hands to the inbound pipeline
    (hub/conversations/pipeline.py).

    `dedup_key` is what makes a resend the same message (a chat client id, an
    email's Message-ID, a phone system's call id); `thread_keys` what the
    channel threads by (Message-IDs referred to, reply addresses); `payload`
    the channel's own record (the parsed mail, the call event).
    """

    channel: Channel
    inbox_id: int
    sender: Sender
    text: str = ""
    dedup_key: str | None = None
    thread_keys: tuple[str, ...] = ()
    attachments: tuple[Any, ...] = ()
    chat: ChatDetails = field(default_factory=ChatDetails)
    payload: Any = None

    @classmethod
    def web_chat(
        cls,
        inbox_id: int,
        text: str,
        client_id: str | None,
        visitor_id: str | None,
        conversation_id: int | None = None,
        contact: ContactDetails | None = None,
        campaign_id: int | None = None,
    ) -> Inbound:
        """A visitor's message from the widget."""
        return cls(
            Channel.WEBSITE,
            inbox_id,
            Sender(visitor_id=visitor_id),
            text,
            dedup_key=client_id,
            chat=ChatDetails(conversation_id, contact, campaign_id),
        )

    @property
    def visitor_id(self) -> str | None:
        return self.sender.visitor_id

    @property
    def client_id(self) -> str | None:
        return self.dedup_key

    @property
    def conversation_id(self) -> int | None:
        return self.chat.conversation_id

    @property
    def campaign_id(self) -> int | None:
        return self.chat.campaign_id

    @property
    def contact(self) -> ContactDetails | None:
        return self.chat.contact


@dataclass(frozen=True)
class Agent:
    id: int
    email: str
    name: str
    role: Role
    # False once deactivated: no login, no session, history kept.
    active: bool = True
    # True until the invitee has set their password from the link.
    invited: bool = False
    availability: Availability = Availability.ONLINE
    notify_sound: bool = True
    notify_browser: bool = False
    # When the avatar last changed; None without one.
    avatar_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class Inbox:
    id: int
    channel: Channel
    name: str
    site_token: str | None
    allowed_origins: tuple[str, ...]
    identity_secret: str | None
    require_identity: bool
    # A website's chats continue by email from this email inbox when the visitor is away.
    email_inbox_id: int | None = None
    # Only its members work in it (hub/agents/access.py); else every agent does.
    members_only: bool = False
    # A website's widget settings as stored (hub/inboxes/widget_settings.py reads them).
    widget_settings: dict[str, Any] | None = None
    # Archived: out of the lists, taking no new chats, mail or calls; history stays.
    archived_at: datetime | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


@dataclass(frozen=True)
class Message:
    conversation_id: int
    seq: int
    direction: Direction
    kind: Kind
    author_type: AuthorType
    author_id: int | None
    author_name: str | None
    text: str
    client_id: str | None
    created_at: datetime

    @property
    def is_private(self) -> bool:
        return self.kind is not Kind.TEXT

    def to_wire(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "direction": self.direction.value,
            "kind": self.kind.value,
            "author": {"type": self.author_type.value, "name": self.author_name},
            "text": self.text,
            "client_id": self.client_id,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class Conversation:
    id: int
    inbox_id: int
    inbox_name: str
    contact_id: int
    contact_name: str | None
    contact_email: str | None
    visitor_id: str | None
    status: Status
    assignee_id: int | None
    assignee_name: str | None
    last_seq: int
    visitor_read_seq: int
    preview: str | None
    created_at: datetime
    last_activity_at: datetime
    unread: int = 0
    call_back: bool = False
    contact_phone: str | None = None
    channel: Channel = Channel.WEBSITE
    subject: str | None = None  # an email ticket's subject

    @property
    def display_name(self) -> str:
        if self.contact_name or self.contact_email:
            return self.contact_name or self.contact_email or ""
        if self.contact_phone:
            return phones.display(self.contact_phone)
        return f"Visitor #{self.contact_id}"

    def to_wire(self) -> dict[str, Any]:
        """The agents' view (console)."""
        return {
            "id": self.id,
            "inbox": {"id": self.inbox_id, "name": self.inbox_name},
            "contact": {
                "id": self.contact_id,
                "name": self.contact_name,
                "email": self.contact_email,
                "phone": self.contact_phone,
                "display_name": self.display_name,
            },
            "status": self.status.value,
            "assignee": (
                {"id": self.assignee_id, "name": self.assignee_name} if self.assignee_id else None
            ),
            "last_seq": self.last_seq,
            "preview": self.preview,
            "created_at": iso(self.created_at),
            "last_activity_at": iso(self.last_activity_at),
            "unread": self.unread,
            "call_back": self.call_back,
            "channel": self.channel.value,
            "subject": self.subject,
        }

    def to_visitor_wire(self) -> dict[str, Any]:
        """What the visitor may see of their own conversation."""
        return {
            "id": self.id,
            "status": self.status.value,
            "assignee": {"name": self.assignee_name} if self.assignee_id else None,
        }


@dataclass(frozen=True)
class Contact:
    """A person. `email` and `external_id` are verified (a valid identity hash, a
    mail they sent, an agent's confirmation); `claimed` holds what a visitor only
    said of themselves ("id", "email", "name"), which nothing is joined on."""

    id: int
    name: str | None
    email: str | None
    phone: str | None
    external_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Visitor:
    id: str
    inbox_id: int
    contact_id: int
    user_agent: str | None
    last_page_url: str | None
    last_page_title: str | None
    created_at: datetime
    last_seen_at: datetime
    visit_count: int = 1
    visit_started_at: datetime | None = None
