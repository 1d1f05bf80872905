"""Email: email inboxes, threads (reply tokens), messages, raw copies, attachments, outbox.

Revision ID: 0006_email
Revises: 0005_calls
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_email"
down_revision = "0005_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_inboxes",
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("intake_token_hash", sa.String(length=64), nullable=False),
        sa.Column("smtp_host", sa.String(length=253), nullable=True),
        sa.Column("smtp_port", sa.Integer(), nullable=True),
        sa.Column("smtp_tls", sa.String(length=8), nullable=False),
        sa.Column("smtp_user", sa.String(length=254), nullable=True),
        sa.Column("smtp_password", sa.String(length=500), nullable=True),
        sa.Column("imap_enabled", sa.Boolean(), nullable=False),
        sa.Column("imap_host", sa.String(length=253), nullable=True),
        sa.Column("imap_port", sa.Integer(), nullable=True),
        sa.Column("imap_tls", sa.String(length=8), nullable=False),
        sa.Column("imap_user", sa.String(length=254), nullable=True),
        sa.Column("imap_password", sa.String(length=500), nullable=True),
        sa.Column("imap_folder", sa.String(length=200), nullable=False),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_last_uid", sa.BigInteger(), nullable=False),
        sa.Column("imap_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imap_error", sa.String(length=500), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("auto_ack", sa.Boolean(), nullable=False),
        sa.Column("auto_ack_subject", sa.String(length=200), nullable=True),
        sa.Column("auto_ack_template", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_email_inboxes_inbox_id_inboxes")
        ),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_email_inboxes")),
        sa.UniqueConstraint("address", name=op.f("uq_email_inboxes_address")),
        sa.UniqueConstraint("intake_token_hash", name=op.f("uq_email_inboxes_intake_token_hash")),
    )
    op.create_table(
        "email_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_inbox_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("in_reply_to", sa.String(length=255), nullable=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("from_address", sa.String(length=254), nullable=True),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("to_addresses", sa.JSON(), nullable=False),
        sa.Column("cc_addresses", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("parse_error", sa.String(length=300), nullable=True),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_email_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["email_inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_email_messages_email_inbox_id_inboxes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint(
            "conversation_id", "seq", name=op.f("uq_email_messages_conversation_id_seq")
        ),
        sa.UniqueConstraint(
            "email_inbox_id",
            "direction",
            "message_id",
            name=op.f("uq_email_messages_email_inbox_id_direction_message_id"),
        ),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_messages_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "email_threads",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("email_inbox_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_email_threads_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["email_inbox_id"], ["inboxes.id"], name=op.f("fk_email_threads_email_inbox_id_inboxes")
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_email_threads")),
        sa.UniqueConstraint("token", name=op.f("uq_email_threads_token")),
    )
    op.create_table(
        "email_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_message_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_id", sa.String(length=250), nullable=True),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_message_id"],
            ["email_messages.id"],
            name=op.f("fk_email_attachments_email_message_id_email_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_attachments")),
    )
    with op.batch_alter_table("email_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_attachments_email_message_id"), ["email_message_id"], unique=False
        )

    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_message_id", sa.Integer(), nullable=False),
        sa.Column("email_inbox_id", sa.Integer(), nullable=False),
        sa.Column("mail_from", sa.String(length=254), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_inbox_id"], ["inboxes.id"], name=op.f("fk_email_outbox_email_inbox_id_inboxes")
        ),
        sa.ForeignKeyConstraint(
            ["email_message_id"],
            ["email_messages.id"],
            name=op.f("fk_email_outbox_email_message_id_email_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
        sa.UniqueConstraint("email_message_id", name=op.f("uq_email_outbox_email_message_id")),
    )
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )

    op.create_table(
        "email_raw",
        sa.Column("email_message_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_message_id"],
            ["email_messages.id"],
            name=op.f("fk_email_raw_email_message_id_email_messages"),
        ),
        sa.PrimaryKeyConstraint("email_message_id", name=op.f("pk_email_raw")),
    )
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_inbox_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.drop_column("email_inbox_id")

    op.drop_table("email_raw")
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_outbox_next_attempt_at"))

    op.drop_table("email_outbox")
    with op.batch_alter_table("email_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_attachments_email_message_id"))

    op.drop_table("email_attachments")
    op.drop_table("email_threads")
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_messages_message_id"))

    op.drop_table("email_messages")
    op.drop_table("email_inboxes")
