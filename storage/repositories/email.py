"""Email tickets: their threads (`email_threads`), the mails stored or sent for
them (`email_messages`, `email_raw`, `email_attachments`). The queries behind
hub/email/threading.py, tickets.py, replies.py and ticket_reads.py.

`direction` arguments are the hub's direction values ("in", "out").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    contacts,
    conversations,
    email_attachments,
    email_inboxes,
    email_messages,
    email_outbox,
    email_raw,
    email_threads,
)

# ---- threads -------------------------------------------------------------------------


async def has_written_in(conn: AsyncConnection, address: str) -> bool:
    """Whether a mail from `address` reached us, on a contact holding that address (a
    real mailbox, not a claim): found through the indexed contact email."""
    found = await conn.scalar(
        sa.select(email_messages.c.id)
        .select_from(contacts)
        .join(conversations, conversations.c.contact_id == contacts.c.id)
        .join(email_messages, email_messages.c.conversation_id == conversations.c.id)
        .where(
            contacts.c.email == address,
            email_messages.c.direction == "in",
            email_messages.c.from_address == address,
        )
        .limit(1)
    )
    return found is not None


async def insert_thread(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(email_threads.insert().values(values))


async def thread(conn: AsyncConnection, conversation_id: int) -> sa.Row | None:
    result = await conn.execute(
        sa.select(email_threads).where(email_threads.c.conversation_id == conversation_id)
    )
    return result.first()


async def set_participants(
    conn: AsyncConnection, conversation_id: int, participants: list[str]
) -> None:
    await conn.execute(
        email_threads.update()
        .where(email_threads.c.conversation_id == conversation_id)
        .values(participants=participants)
    )


async def ticket_with_token(
    conn: AsyncConnection, inbox_id: int, tokens: Sequence[str]
) -> int | None:
    """The inbox's ticket whose reply address carries one of these tokens."""
    found: int | None = await conn.scalar(
        sa.select(email_threads.c.conversation_id)
        .where(email_threads.c.email_inbox_id == inbox_id)
        .where(email_threads.c.token.in_(tokens))
    )
    return found


async def ticket_people(conn: AsyncConnection, inbox_id: int, ticket: int) -> sa.Row | None:
    """The inbox's ticket's participants and its contact's email, if it is one."""
    result = await conn.execute(
        sa.select(email_threads.c.participants, contacts.c.email)
        .select_from(
            email_threads.join(
                conversations, conversations.c.id == email_threads.c.conversation_id
            ).join(contacts, contacts.c.id == conversations.c.contact_id)
        )
        .where(email_threads.c.conversation_id == ticket)
        .where(email_threads.c.email_inbox_id == inbox_id)
    )
    return result.first()


async def own_addresses(conn: AsyncConnection) -> set[str]:
    """Every email inbox's address."""
    return set((await conn.scalars(sa.select(email_inboxes.c.address))).all())


# ---- mails ---------------------------------------------------------------------------


async def insert_mail(
    conn: AsyncConnection, values: dict[str, Any], raw: bytes, attachments: list[dict[str, Any]]
) -> int:
    """Store one mail: its row, its bytes as received or sent, its attachments; its id."""
    email_id: int = await conn.scalar(
        email_messages.insert().values(values).returning(email_messages.c.id)
    )
    await conn.execute(email_raw.insert().values(email_message_id=email_id, data=raw))
    if attachments:
        await conn.execute(
            email_attachments.insert(),
            [{"email_message_id": email_id, **attachment} for attachment in attachments],
        )
    return email_id


async def received(
    conn: AsyncConnection, inbox_id: int, direction: str, message_id: str
) -> sa.Row | None:
    """The mail with this Message-ID the inbox stored already (conversation_id, seq)."""
    result = await conn.execute(
        sa.select(email_messages.c.conversation_id, email_messages.c.seq)
        .where(email_messages.c.email_inbox_id == inbox_id)
        .where(email_messages.c.direction == direction)
        .where(email_messages.c.message_id == message_id)
    )
    return result.first()


async def latest_among(
    conn: AsyncConnection,
    message_ids: Sequence[str],
    *,
    inbox_id: int | None = None,
    direction: str | None = None,
) -> sa.Row | None:
    """The latest stored mail with one of these Message-IDs (id, conversation_id, seq)."""
    query = (
        sa.select(email_messages.c.id, email_messages.c.conversation_id, email_messages.c.seq)
        .where(email_messages.c.message_id.in_(message_ids))
        .order_by(email_messages.c.id.desc())
        .limit(1)
    )
    if inbox_id is not None:
        query = query.where(email_messages.c.email_inbox_id == inbox_id)
    if direction is not None:
        query = query.where(email_messages.c.direction == direction)
    return (await conn.execute(query)).first()


async def latest_of(
    conn: AsyncConnection, conversation_id: int, direction: str | None = None
) -> sa.Row | None:
    """The conversation's latest mail (of `direction`, when given): its Message-ID,
    references, sender, text and time."""
    query = (
        sa.select(
            email_messages.c.message_id,
            email_messages.c.references,
            email_messages.c.from_address,
            email_messages.c.from_name,
            email_messages.c.text,
            email_messages.c.created_at,
        )
        .where(email_messages.c.conversation_id == conversation_id)
        .order_by(email_messages.c.seq.desc())
        .limit(1)
    )
    if direction is not None:
        query = query.where(email_messages.c.direction == direction)
    return (await conn.execute(query)).first()


async def id_at(conn: AsyncConnection, conversation_id: int, seq: int) -> int | None:
    """The mail of the conversation's message `seq`."""
    found: int | None = await conn.scalar(
        sa.select(email_messages.c.id)
        .where(email_messages.c.conversation_id == conversation_id)
        .where(email_messages.c.seq == seq)
    )
    return found


async def of_conversation(conn: AsyncConnection, conversation_id: int) -> list[sa.Row]:
    """The conversation's mails with their outbox state (state, last_error, attempts,
    next_attempt_at, delivery, delivery_note; None for received mail), by seq."""
    result = await conn.execute(
        sa.select(
            email_messages,
            email_outbox.c.state,
            email_outbox.c.last_error,
            email_outbox.c.attempts,
            email_outbox.c.next_attempt_at,
            email_outbox.c.delivery,
            email_outbox.c.delivery_note,
        )
        .select_from(
            email_messages.outerjoin(
                email_outbox, email_outbox.c.email_message_id == email_messages.c.id
            )
        )
        .where(email_messages.c.conversation_id == conversation_id)
        .order_by(email_messages.c.seq)
    )
    return list(result)


async def files_of(conn: AsyncConnection, email_ids: Sequence[int]) -> list[sa.Row]:
    """The attachments of these mails, without their bytes."""
    if not email_ids:
        return []
    result = await conn.execute(
        sa.select(
            email_attachments.c.id,
            email_attachments.c.email_message_id,
            email_attachments.c.filename,
            email_attachments.c.content_type,
            email_attachments.c.size,
            email_attachments.c.inline,
        )
        .where(email_attachments.c.email_message_id.in_(email_ids))
        .order_by(email_attachments.c.id)
    )
    return list(result)


async def body(conn: AsyncConnection, email_id: int) -> sa.Row | None:
    """conversation_id, text, html of one mail."""
    result = await conn.execute(
        sa.select(
            email_messages.c.conversation_id, email_messages.c.text, email_messages.c.html
        ).where(email_messages.c.id == email_id)
    )
    return result.first()


async def raw(conn: AsyncConnection, email_id: int) -> sa.Row | None:
    """conversation_id, data (the bytes) of one mail."""
    result = await conn.execute(
        sa.select(email_messages.c.conversation_id, email_raw.c.data)
        .select_from(
            email_messages.join(email_raw, email_raw.c.email_message_id == email_messages.c.id)
        )
        .where(email_messages.c.id == email_id)
    )
    return result.first()


async def attachment(conn: AsyncConnection, attachment_id: int) -> sa.Row | None:
    """An attachment with its bytes and its mail's conversation_id."""
    result = await conn.execute(
        sa.select(email_attachments, email_messages.c.conversation_id)
        .select_from(
            email_attachments.join(
                email_messages, email_messages.c.id == email_attachments.c.email_message_id
            )
        )
        .where(email_attachments.c.id == attachment_id)
    )
    return result.first()


async def inline_images(conn: AsyncConnection, email_id: int) -> dict[str, int]:
    """`cid:` → attachment id of one mail."""
    result = await conn.execute(
        sa.select(email_attachments.c.content_id, email_attachments.c.id)
        .where(email_attachments.c.email_message_id == email_id)
        .where(email_attachments.c.content_id.is_not(None))
    )
    return {r.content_id: r.id for r in result}


async def opened_since(
    conn: AsyncConnection, contact_id: int, inbox_id: int, since: datetime
) -> int:
    """How many conversations the contact opened in the inbox since then."""
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(conversations)
        .where(conversations.c.contact_id == contact_id)
        .where(conversations.c.inbox_id == inbox_id)
        .where(conversations.c.created_at > since)
    )
    return count or 0


async def acknowledgements_since(conn: AsyncConnection, inbox_id: int, since: datetime) -> int:
    """How many acknowledgements (automatic outgoing mail) the inbox queued since then."""
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(email_messages)
        .where(email_messages.c.email_inbox_id == inbox_id)
        .where(email_messages.c.direction == "out")
        .where(email_messages.c.automatic.is_(True))
        .where(email_messages.c.created_at > since)
    )
    return count or 0
