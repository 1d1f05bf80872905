"""Agents: failed logins since the last login (count, latest time and address).

Revision ID: 0010_login_failures
Revises: 0009_claimed_identity
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_login_failures"
down_revision = "0009_claimed_identity"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_failed_login_at", TIMESTAMP))
        batch.add_column(sa.Column("last_failed_login_from", sa.String(45)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("last_failed_login_from")
        batch.drop_column("last_failed_login_at")
        batch.drop_column("failed_logins")
