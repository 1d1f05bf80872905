"""Server-side agent sessions, so that logging out ends a session for good.

Revision ID: 0003_sessions
Revises: 0002_jobs
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sessions"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_sessions"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name="fk_agent_sessions_agent_id_agents",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    op.create_index("ix_agent_sessions_expires_at", "agent_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("agent_sessions")
