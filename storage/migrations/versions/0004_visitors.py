"""Live visitors: page views, visits, proactive campaigns, business hours.

Revision ID: 0004_visitors
Revises: 0003_sessions
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_visitors"
down_revision = "0003_sessions"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("visitors") as batch:
        batch.add_column(sa.Column("visit_count", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("visit_started_at", TIMESTAMP))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("campaign_id", sa.Integer))
    op.create_table(
        "page_views",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("visitor_id", sa.String(40), nullable=False),
        sa.Column("contact_id", sa.Integer, nullable=False),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("visit", sa.Integer, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("title", sa.String(300)),
        sa.Column("referrer", sa.String(2000)),
        sa.Column("seconds", sa.Integer),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_page_views"),
        sa.ForeignKeyConstraint(
            ["visitor_id"], ["visitors.id"], name="fk_page_views_visitor_id_visitors"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_page_views_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name="fk_page_views_inbox_id_inboxes"
        ),
    )
    op.create_index("ix_page_views_visitor_id", "page_views", ["visitor_id"])
    op.create_index("ix_page_views_contact_id", "page_views", ["contact_id"])
    op.create_index("ix_page_views_created_at", "page_views", ["created_at"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("sender_name", sa.String(100), nullable=False),
        sa.Column("url_match", sa.String(16), nullable=False),
        sa.Column("url_pattern", sa.String(500), nullable=False),
        sa.Column("min_seconds", sa.Integer, nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("business_hours_only", sa.Boolean, nullable=False),
        sa.Column("agents_online_only", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inboxes.id"], name="fk_campaigns_inbox_id_inboxes"),
    )
    op.create_table(
        "campaign_deliveries",
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("visitor_id", sa.String(40), nullable=False),
        sa.Column("shown_at", TIMESTAMP, nullable=False),
        sa.Column("conversation_id", sa.Integer),
        sa.Column("replied_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("campaign_id", "visitor_id", name="pk_campaign_deliveries"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_deliveries_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(
            ["visitor_id"], ["visitors.id"], name="fk_campaign_deliveries_visitor_id_visitors"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_campaign_deliveries_conversation_id_conversations",
        ),
    )
    op.create_table(
        "business_hours",
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("schedule", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("inbox_id", name="pk_business_hours"),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name="fk_business_hours_inbox_id_inboxes"
        ),
    )


def downgrade() -> None:
    op.drop_table("business_hours")
    op.drop_table("campaign_deliveries")
    op.drop_table("campaigns")
    op.drop_index("ix_page_views_created_at", "page_views")
    op.drop_index("ix_page_views_contact_id", "page_views")
    op.drop_index("ix_page_views_visitor_id", "page_views")
    op.drop_table("page_views")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("campaign_id")
    with op.batch_alter_table("visitors") as batch:
        batch.drop_column("visit_started_at")
        batch.drop_column("visit_count")
