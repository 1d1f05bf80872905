"""Room for sealed secrets: voice-provider auth tokens and website identity secrets
are stored sealed (`enc:<Fernet token>`, hub/sealing.py); `hub migrate` seals
the plain values stored before this revision.

Revision ID: 0011_sealed_secrets
Revises: 0010_login_failures
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_sealed_secrets"
down_revision = "0010_login_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inboxes") as batch:
        batch.alter_column("identity_secret", type_=sa.String(500), existing_type=sa.String(128))
    with op.batch_alter_table("voice_lines") as batch:
        batch.alter_column(
            "provider_auth_token", type_=sa.String(500), existing_type=sa.String(128)
        )


def downgrade() -> None:
    with op.batch_alter_table("voice_lines") as batch:
        batch.alter_column(
            "provider_auth_token", type_=sa.String(128), existing_type=sa.String(500)
        )
    with op.batch_alter_table("inboxes") as batch:
        batch.alter_column("identity_secret", type_=sa.String(128), existing_type=sa.String(500))
