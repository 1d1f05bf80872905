"""The admins' audit log: who changed which setting, agent or inbox, and when.

Revision ID: 0016_audit_log
Revises: 0015_inbox_access
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_audit_log"
down_revision = "0015_inbox_access"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False, index=True),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("agent_name", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
