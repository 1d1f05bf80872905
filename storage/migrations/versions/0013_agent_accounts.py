"""Agents' accounts: deactivation, invitations, availability, notification
settings, and avatars (a table of their own, so agent rows stay small).

Revision ID: 0013_agent_accounts
Revises: 0012_website_settings
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_agent_accounts"
down_revision = "0012_website_settings"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("deactivated_at", TIMESTAMP))
        batch.add_column(sa.Column("invite_nonce", sa.String(64)))
        batch.add_column(
            sa.Column("availability", sa.String(8), nullable=False, server_default="online")
        )
        batch.add_column(
            sa.Column("notify_sound", sa.Boolean, nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("notify_browser", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("avatar_at", TIMESTAMP))
    op.create_table(
        "agent_avatars",
        sa.Column(
            "agent_id",
            sa.Integer,
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("content_type", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_avatars")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("avatar_at")
        batch.drop_column("notify_browser")
        batch.drop_column("notify_sound")
        batch.drop_column("availability")
        batch.drop_column("invite_nonce")
        batch.drop_column("deactivated_at")
