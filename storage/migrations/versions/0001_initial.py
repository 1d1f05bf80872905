"""Initial schema: agents, contacts, inboxes, visitors, conversations, messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("email", name="uq_agents_email"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(32)),
        sa.Column("external_id", sa.String(200)),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_index("ix_contacts_email", "contacts", ["email"])
    op.create_table(
        "inboxes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("site_token", sa.String(64)),
        sa.Column("allowed_origins", sa.JSON, nullable=False),
        sa.Column("identity_secret", sa.String(128)),
        sa.Column("require_identity", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inboxes"),
        sa.UniqueConstraint("site_token", name="uq_inboxes_site_token"),
    )
    op.create_table(
        "visitors",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("user_agent", sa.String(400)),
        sa.Column("last_page_url", sa.String(2000)),
        sa.Column("last_page_title", sa.String(300)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_visitors"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inboxes.id"], name="fk_visitors_inbox_id_inboxes"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_visitors_contact_id_contacts"
        ),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("visitor_id", sa.String(40)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.Integer),
        sa.Column("subject", sa.String(300)),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_in_seq", sa.Integer, nullable=False),
        sa.Column("visitor_read_seq", sa.Integer, nullable=False),
        sa.Column("preview", sa.String(200)),
        sa.Column("snoozed_until", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_activity_at", TIMESTAMP, nullable=False),
        sa.Column("first_reply_at", TIMESTAMP),
        sa.Column("resolved_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name="fk_conversations_inbox_id_inboxes"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_conversations_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["visitor_id"], ["visitors.id"], name="fk_conversations_visitor_id_visitors"
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["agents.id"], name="fk_conversations_assignee_id_agents"
        ),
    )
    op.create_index("ix_conversations_visitor_id", "conversations", ["visitor_id"])
    op.create_index("ix_conversations_last_activity_at", "conversations", ["last_activity_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author_type", sa.String(16), nullable=False),
        sa.Column("author_id", sa.Integer),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("client_id", sa.String(64)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
        ),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
        sa.UniqueConstraint(
            "conversation_id", "client_id", name="uq_messages_conversation_id_client_id"
        ),
    )
    op.create_table(
        "agent_reads",
        sa.Column("agent_id", sa.Integer, nullable=False),
        sa.Column("conversation_id", sa.Integer, nullable=False),
        sa.Column("read_seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "conversation_id", name="pk_agent_reads"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_agent_reads_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_agent_reads_conversation_id_conversations",
        ),
    )


def downgrade() -> None:
    for table in (
        "agent_reads",
        "messages",
        "conversations",
        "visitors",
        "inboxes",
        "contacts",
        "agents",
    ):
        op.drop_table(table)
