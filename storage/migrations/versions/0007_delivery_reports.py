"""Delivery reports: what a report said about a sent reply (delayed, delivered).

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


def downgrade() -> None:
    with op.batch_alter_table("email_outbox") as batch:
        batch.drop_column("delivery_note")
        batch.drop_column("delivery")
