"""Who sees which inbox: teams, their members, an inbox's members, and whether
an inbox is for its members only.

Revision ID: 0015_inbox_access
Revises: 0014_two_factor
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_inbox_access"
down_revision = "0014_two_factor"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "team_members",
        sa.Column(
            "team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "agent_id",
            sa.Integer,
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )
    op.create_table(
        "inbox_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "inbox_id",
            sa.Integer,
            sa.ForeignKey("inboxes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="CASCADE")),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE")),
        sa.UniqueConstraint("inbox_id", "agent_id", "team_id", name="uq_inbox_member"),
    )
    with op.batch_alter_table("inboxes") as batch:
        batch.add_column(
            sa.Column("members_only", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("inboxes") as batch:
        batch.drop_column("members_only")
    op.drop_table("inbox_members")
    op.drop_table("team_members")
    op.drop_table("teams")
