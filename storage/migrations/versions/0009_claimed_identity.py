"""Claimed identity: what a visitor only claimed is kept apart from the contact's
verified details (contacts.claimed).

Revision ID: 0009_claimed_identity
Revises: 0007_delivery_reports
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_claimed_identity"
down_revision = "0007_delivery_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("claimed", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("claimed")
