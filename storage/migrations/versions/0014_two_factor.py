"""Two-factor login: agents' TOTP secrets (sealed) and recovery codes (hashed), and
hub-wide settings (whether admins require two-factor for every agent).

Revision ID: 0014_two_factor
Revises: 0013_agent_accounts
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_two_factor"
down_revision = "0013_agent_accounts"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_two_factor",
        sa.Column(
            "agent_id",
            sa.Integer,
            sa.ForeignKey(
                "agents.id",
                ondelete="CASCADE",
                name="fk_agent_two_factor_agent_id_agents",
            ),
            nullable=False,
        ),
        sa.Column("secret", sa.String(500), nullable=False),
        sa.Column("enabled_at", TIMESTAMP),
        sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agent_two_factor"),
    )
    op.create_table(
        "agent_recovery_codes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "agent_id",
            sa.Integer,
            sa.ForeignKey(
                "agents.id",
                ondelete="CASCADE",
                name="fk_agent_recovery_codes_agent_id_agents",
            ),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id", name="pk_agent_recovery_codes"),
        sa.UniqueConstraint(
            "agent_id", "code_hash", name="uq_agent_recovery_codes_agent_id_code_hash"
        ),
    )
    op.create_index("ix_agent_recovery_codes_agent_id", "agent_recovery_codes", ["agent_id"])
    op.create_table(
        "hub_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column(
            "updated_by",
            sa.Integer,
            sa.ForeignKey(
                "agents.id", ondelete="SET NULL", name="fk_hub_settings_updated_by_agents"
            ),
        ),
        sa.PrimaryKeyConstraint("name", name="pk_hub_settings"),
    )


def downgrade() -> None:
    op.drop_table("hub_settings")
    op.drop_index("ix_agent_recovery_codes_agent_id", "agent_recovery_codes")
    op.drop_table("agent_recovery_codes")
    op.drop_table("agent_two_factor")
