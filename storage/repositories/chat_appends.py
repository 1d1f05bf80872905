"""The statements of web chat's hot path (hub/conversations/chat_ingest.py and, on
SQLite, chat_ingest_sqlite.py): built once, since building a Select per call cost
about a third of ingest's CPU. Parameters are named b_* because SQLAlchemy
reserves column names as parameter names in INSERT and UPDATE."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from storage.repositories.conversations import ASSIGNEES
from storage.tables import contacts, conversations, inboxes, messages, visitors


class VisitorMessageStatements(NamedTuple):
    visitor_and_target: sa.Select
    append: sa.Update
    insert: sa.Insert


def visitor_message_statements(
    *, open_status: str, inbound: str, text_kind: str, visitor_author: str
) -> VisitorMessageStatements:
    """The three statements of a visitor's message, with the values the hub stores
    for an open conversation, an inbound message, a text and a visitor author."""
    _theirs = conversations.alias("theirs")
    _target_id = sa.func.coalesce(
        sa.bindparam("b_conversation_id", type_=sa.Integer),
        sa.select(_theirs.c.id)
        .where(_theirs.c.visitor_id == visitors.c.id)
        .order_by(_theirs.c.id.desc())
        .limit(1)
        .correlate(visitors)
        .scalar_subquery(),
    )
    _earlier_seq = (
        sa.select(messages.c.seq)
        .where(messages.c.conversation_id == conversations.c.id)
        .where(messages.c.client_id == sa.bindparam("b_client_id", type_=sa.String))
        .correlate(conversations)
        .scalar_subquery()
    )
    # The visitor's contact, and the conversation the message goes to (the one
    # named, else the visitor's latest; none for a first message) with what a
    # Conversation shows besides its own columns, and the seq of an earlier message
    # with the same client id: one query.
    visitor_and_target = (
        sa.select(
            visitors.c.contact_id,
            visitors.c.inbox_id,
            conversations.c.id.label("conversation_id"),
            conversations.c.status,
            conversations.c.visitor_id.label("owner"),
            conversations.c.contact_id.label("conversation_contact_id"),
            conversations.c.assignee_id,
            inboxes.c.name.label("inbox_name"),
            inboxes.c.channel.label("channel"),
            contacts.c.name.label("contact_name"),
            contacts.c.email.label("contact_email"),
            contacts.c.phone.label("contact_phone"),
            ASSIGNEES.c.name.label("assignee_name"),
            _earlier_seq.label("earlier_seq"),
        )
        .select_from(
            visitors.outerjoin(conversations, conversations.c.id == _target_id)
            .outerjoin(inboxes, inboxes.c.id == conversations.c.inbox_id)
            .outerjoin(contacts, contacts.c.id == conversations.c.contact_id)
            .outerjoin(ASSIGNEES, ASSIGNEES.c.id == conversations.c.assignee_id)
        )
        .where(visitors.c.id == sa.bindparam("b_visitor_id"))
    )
    # A visitor's message: next seq, reopened, previewed; returns the whole row.
    append = (
        conversations.update()
        .where(conversations.c.id == sa.bindparam("b_conversation_id"))
        .values(
            last_seq=conversations.c.last_seq + 1,
            last_in_seq=conversations.c.last_seq + 1,
            last_activity_at=sa.bindparam("b_now"),
            preview=sa.bindparam("b_preview"),
            status=open_status,
            snoozed_until=None,
            resolved_at=None,
        )
        .returning(*conversations.c)
    )
    # A visitor's chat message.
    insert = messages.insert().values(
        conversation_id=sa.bindparam("b_conversation_id"),
        seq=sa.bindparam("b_seq"),
        direction=inbound,
        kind=text_kind,
        author_type=visitor_author,
        author_id=None,
        text=sa.bindparam("b_text"),
        client_id=sa.bindparam("b_client_id"),
        created_at=sa.bindparam("b_created_at"),
    )
    return VisitorMessageStatements(visitor_and_target, append, insert)
