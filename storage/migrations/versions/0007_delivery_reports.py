"""Delivery reports: what a report said about a sent reply (delayed, delivered),
and the log of bounces that matched no outgoing message.

Revision ID: 0007_delivery_reports
Revises: 0006_email
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_delivery_reports"
down_revision = "0006_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("email_outbox") as batch:
        batch.add_column(sa.Column("delivery", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("delivery_note", sa.String(length=500), nullable=True))
    op.create_table(
        "email_unmatched_bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_inbox_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.String(length=500), nullable=True),
        sa.Column("original_message_id", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_email_unmatched_bounces_email_inbox_id_inboxes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_unmatched_bounces")),
        sa.UniqueConstraint(
            "email_inbox_id",
            "message_id",
            name=op.f("uq_email_unmatched_bounces_email_inbox_id_message_id"),
        ),
    )
    with op.batch_alter_table("email_unmatched_bounces") as batch:
        batch.create_index(
            batch.f("ix_email_unmatched_bounces_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("email_unmatched_bounces")
    with op.batch_alter_table("email_outbox") as batch:
        batch.drop_column("delivery_note")
        batch.drop_column("delivery")
