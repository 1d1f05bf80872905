"""Phone calls: voice lines, contacts' phone numbers, the call log, call-back flag.

Revision ID: 0005_calls
Revises: 0004_visitors
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_calls"
down_revision = "0004_visitors"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("call_back", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "voice_lines",
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("phone_numbers", sa.JSON, nullable=False),
        sa.Column("default_region", sa.String(2), nullable=False),
        sa.Column("cti_token_hash", sa.String(64), nullable=False),
        sa.Column("provider_auth_token", sa.String(128)),
        sa.Column("blocked_numbers", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("inbox_id", name="pk_voice_lines"),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name="fk_voice_lines_inbox_id_inboxes"
        ),
        sa.UniqueConstraint("cti_token_hash", name="uq_voice_lines_cti_token_hash"),
    )
    op.create_table(
        "contact_phones",
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("e164", name="pk_contact_phones"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_contact_phones_contact_id_contacts"
        ),
    )
    op.create_index("ix_contact_phones_contact_id", "contact_phones", ["contact_id"])
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("from_number", sa.String(40)),
        sa.Column("to_number", sa.String(40)),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("conversation_id", sa.Integer, nullable=False),
        sa.Column("queue", sa.String(100)),
        sa.Column("agents_rung", sa.JSON, nullable=False),
        sa.Column("answered_by", sa.String(100)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("hangup_cause", sa.String(32)),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ringing_at", TIMESTAMP),
        sa.Column("answered_at", TIMESTAMP),
        sa.Column("ended_at", TIMESTAMP),
        sa.Column("duration_seconds", sa.Integer),
        sa.Column("recording_url", sa.String(2000)),
        sa.Column("notes", sa.Text),
        sa.Column("call_back", sa.Boolean, nullable=False),
        sa.Column("called_back_at", TIMESTAMP),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inboxes.id"], name="fk_calls_inbox_id_inboxes"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_calls_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_calls_conversation_id_conversations",
        ),
        sa.UniqueConstraint("inbox_id", "external_id", name="uq_calls_inbox_id_external_id"),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_updated_at", "calls", ["updated_at"])


def downgrade() -> None:
    for table in ("calls", "contact_phones", "voice_lines"):
        op.drop_table(table)
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("call_back")
