"""Inboxes set up in the console: a website's widget settings (colour, position,
greeting, language, away message, pre-chat form) and when an inbox was archived.

Revision ID: 0012_website_settings
Revises: 0011_sealed_secrets
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_website_settings"
down_revision = "0011_sealed_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inboxes") as batch:
        batch.add_column(sa.Column("widget_settings", sa.JSON))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("inboxes") as batch:
        batch.drop_column("archived_at")
        batch.drop_column("widget_settings")
