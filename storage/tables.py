"""Table definitions (SQLAlchemy Core). Migrations in `storage/migrations` follow them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

TIMESTAMP = sa.DateTime(timezone=True)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # Wrong passwords since the agent last logged in (revision 0010): one
    # counter and the latest attempt, so a flood cannot grow the table.
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0", default=0),
    sa.Column("last_failed_login_at", TIMESTAMP),
    sa.Column("last_failed_login_from", sa.String(45)),
    # Revision 0013: a deactivated agent cannot log in and keeps their history;
    # an invited one has this nonce until the invitation is used (single use).
    sa.Column("deactivated_at", TIMESTAMP),
    sa.Column("invite_nonce", sa.String(64)),
    # What the agent chose (online, busy, offline); shown as offline while no
    # console of theirs is open (hub/agents/presence.py).
    sa.Column("availability", sa.String(8), nullable=False, server_default="online"),
    sa.Column("notify_sound", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("notify_browser", sa.Boolean, nullable=False, server_default=sa.false()),
    # When the avatar last changed (its URL's version), None without one.
    sa.Column("avatar_at", TIMESTAMP),
)

# An agent's uploaded picture (a PNG, JPEG or WebP of at most 1 MB).
agent_avatars = sa.Table(
    "agent_avatars",
    metadata,
    sa.Column(
        "agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("content_type", sa.String(16), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("email", sa.String(254), index=True),
    sa.Column("phone", sa.String(32)),
    sa.Column("external_id", sa.String(200)),  # set only by a verified identity
    sa.Column("attributes", sa.JSON, nullable=False, default=dict),
    # What a visitor only claimed (an identify without a valid hash, the away
    # form): shown to agents as claimed, never joined on, never mailed.
    sa.Column("claimed", sa.JSON),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

inboxes = sa.Table(
    "inboxes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("site_token", sa.String(64), unique=True),
    sa.Column("allowed_origins", sa.JSON, nullable=False, default=list),
    sa.Column("identity_secret", sa.String(500)),  # sealed (revision 0011)
    sa.Column("require_identity", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # A website whose chats continue by email sends from this email inbox (0006).
    # No foreign key: SQLite cannot add one without rebuilding the table.
    sa.Column("email_inbox_id", sa.Integer),
    # True: only the inbox's members (agents, and agents of its teams) work in
    # it; false: every agent does (revision 0015).
    sa.Column("members_only", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # A website's widget settings set in the console (0012; hub/inboxes/widget_settings.py).
    sa.Column("widget_settings", sa.JSON),
    # An archived inbox is out of the lists and takes no new chats, mail or calls (0012).
    sa.Column("archived_at", TIMESTAMP),
)

# Teams and who works in which inbox (revision 0015; hub/agents/access.py).
teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

team_members = sa.Table(
    "team_members",
    metadata,
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

# An inbox's members: each row one agent or one team.
inbox_members = sa.Table(
    "inbox_members",
    metadata,
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

visitors = sa.Table(
    "visitors",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("user_agent", sa.String(400)),
    sa.Column("last_page_url", sa.String(2000)),
    sa.Column("last_page_title", sa.String(300)),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("last_seen_at", TIMESTAMP, nullable=False),
    # Live visitors (0002): how many visits, and when the current one began.
    sa.Column("visit_count", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("visit_started_at", TIMESTAMP),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("visitor_id", sa.String(40), sa.ForeignKey("visitors.id"), index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("agents.id")),
    sa.Column("subject", sa.String(300)),
    sa.Column("last_seq", sa.Integer, nullable=False, default=0),
    sa.Column("last_in_seq", sa.Integer, nullable=False, default=0),
    sa.Column("visitor_read_seq", sa.Integer, nullable=False, default=0),
    sa.Column("preview", sa.String(200)),
    sa.Column("snoozed_until", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("last_activity_at", TIMESTAMP, nullable=False, index=True),
    sa.Column("first_reply_at", TIMESTAMP),
    sa.Column("resolved_at", TIMESTAMP),
    # The proactive campaign whose message the visitor answered (0004). No
    # foreign key: SQLite cannot add one without rebuilding the table.
    sa.Column("campaign_id", sa.Integer),
    # A missed call waits for an agent to ring back (see hub/voice/calls.py).
    sa.Column("call_back", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("author_type", sa.String(16), nullable=False),
    sa.Column("author_id", sa.Integer),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("client_id", sa.String(64)),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.UniqueConstraint("conversation_id", "seq"),
    sa.UniqueConstraint("conversation_id", "client_id"),
)

agent_reads = sa.Table(
    "agent_reads",
    metadata,
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), primary_key=True),
    sa.Column("read_seq", sa.Integer, nullable=False),
)

job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64)),
    sa.Column("lease_until", TIMESTAMP),
    sa.Column("last_run_at", TIMESTAMP),
    sa.Column("last_result", sa.Integer),
)

agent_sessions = sa.Table(
    "agent_sessions",
    metadata,
    # SHA-256 of the token in the agent's cookie: a copy of this table opens no session.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "agent_id",
        sa.Integer,
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False, index=True),
)


# ---- live visitors and campaigns (revision 0004) ----------------------------

page_views = sa.Table(
    "page_views",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "visitor_id", sa.String(40), sa.ForeignKey("visitors.id"), nullable=False, index=True
    ),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("visit", sa.Integer, nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("title", sa.String(300)),
    sa.Column("referrer", sa.String(2000)),
    sa.Column("seconds", sa.Integer),
    sa.Column("created_at", TIMESTAMP, nullable=False, index=True),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
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
)

campaign_deliveries = sa.Table(
    "campaign_deliveries",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("visitor_id", sa.String(40), sa.ForeignKey("visitors.id"), primary_key=True),
    sa.Column("shown_at", TIMESTAMP, nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
    sa.Column("replied_at", TIMESTAMP),
)

business_hours = sa.Table(
    "business_hours",
    metadata,
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("schedule", sa.JSON, nullable=False),
)


# ---- phone calls (hub/voice/calls.py) -------------------------------------------------

# A voice inbox's phone line: its numbers, how to read national numbers, and
# the secrets its phone system signs or authenticates with.
voice_lines = sa.Table(
    "voice_lines",
    metadata,
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), primary_key=True),
    sa.Column("phone_numbers", sa.JSON, nullable=False, default=list),
    sa.Column("default_region", sa.String(2), nullable=False),
    # SHA-256 of the CTI webhook token: the token itself is shown once and never stored.
    sa.Column("cti_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("provider_auth_token", sa.String(500)),  # sealed (revision 0011)
    # Callers answered {"action": "reject"} by the CTI webhook (E.164).
    sa.Column("blocked_numbers", sa.JSON, nullable=False, default=list),
)

# Every number a contact is known by, in E.164; one contact per number.
contact_phones = sa.Table(
    "contact_phones",
    metadata,
    sa.Column("e164", sa.String(20), primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False, index=True),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(100), nullable=False),
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("from_number", sa.String(40)),
    sa.Column("to_number", sa.String(40)),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("queue", sa.String(100)),
    sa.Column("agents_rung", sa.JSON, nullable=False, default=list),
    sa.Column("answered_by", sa.String(100)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16)),
    sa.Column("hangup_cause", sa.String(32)),
    sa.Column("started_at", TIMESTAMP, nullable=False, index=True),
    sa.Column("ringing_at", TIMESTAMP),
    sa.Column("answered_at", TIMESTAMP),
    sa.Column("ended_at", TIMESTAMP),
    sa.Column("duration_seconds", sa.Integer),
    sa.Column("recording_url", sa.String(2000)),
    sa.Column("notes", sa.Text),
    sa.Column("call_back", sa.Boolean, nullable=False, default=False),
    sa.Column("called_back_at", TIMESTAMP),
    sa.Column("updated_at", TIMESTAMP, nullable=False, index=True),
    sa.UniqueConstraint("inbox_id", "external_id"),
)


# ---- email (hub/email/inboxes.py, hub/email/tickets.py, hub/email/outbox.py) ----

# An email inbox's address, how mail reaches it, and how its replies leave.
# Passwords are kept as "enc:<Fernet token>" or "env:<VARIABLE>" (hub/email/secrets.py).
email_inboxes = sa.Table(
    "email_inboxes",
    metadata,
    sa.Column("inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), primary_key=True),
    sa.Column("address", sa.String(254), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100)),
    # SHA-256 of the raw-MIME HTTP intake token: shown once, never stored.
    sa.Column("intake_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("smtp_host", sa.String(253)),
    sa.Column("smtp_port", sa.Integer),
    sa.Column("smtp_tls", sa.String(8), nullable=False, default="starttls"),
    sa.Column("smtp_user", sa.String(254)),
    sa.Column("smtp_password", sa.String(500)),
    sa.Column("imap_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("imap_host", sa.String(253)),
    sa.Column("imap_port", sa.Integer),
    sa.Column("imap_tls", sa.String(8), nullable=False, default="tls"),
    sa.Column("imap_user", sa.String(254)),
    sa.Column("imap_password", sa.String(500)),
    sa.Column("imap_folder", sa.String(200), nullable=False, default="INBOX"),
    # Where the poller is: a new UIDVALIDITY means the mailbox was rebuilt.
    sa.Column("imap_uidvalidity", sa.BigInteger),
    sa.Column("imap_last_uid", sa.BigInteger, nullable=False, default=0),
    sa.Column("imap_checked_at", TIMESTAMP),
    sa.Column("imap_error", sa.String(500)),
    sa.Column("signature", sa.Text),
    sa.Column("auto_ack", sa.Boolean, nullable=False, default=False),
    sa.Column("auto_ack_subject", sa.String(200)),
    sa.Column("auto_ack_template", sa.Text),
)

# The email side of a conversation: its reply address token and who is on it.
# A web chat continued by email has one too (its inbox is the website's).
email_threads = sa.Table(
    "email_threads",
    metadata,
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), primary_key=True),
    sa.Column("email_inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    # support+<token>@…: unguessable, so a stranger cannot write into a ticket.
    sa.Column("token", sa.String(16), nullable=False, unique=True),
    sa.Column("subject", sa.String(300), nullable=False),
    # The customer and everyone they copied (lower-case addresses).
    sa.Column("participants", sa.JSON, nullable=False, default=list),
)

email_messages = sa.Table(
    "email_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False, index=True),
    sa.Column("in_reply_to", sa.String(255)),
    sa.Column("references", sa.JSON, nullable=False, default=list),
    sa.Column("from_address", sa.String(254)),
    sa.Column("from_name", sa.String(200)),
    sa.Column("to_addresses", sa.JSON, nullable=False, default=list),
    sa.Column("cc_addresses", sa.JSON, nullable=False, default=list),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text),
    sa.Column("automatic", sa.Boolean, nullable=False, default=False),
    sa.Column("parse_error", sa.String(300)),
    sa.Column("raw_size", sa.Integer, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # One stored copy per Message-ID per inbox, however it arrived (SMTP, IMAP, HTTP).
    sa.UniqueConstraint("email_inbox_id", "direction", "message_id"),
    sa.UniqueConstraint("conversation_id", "seq"),
)

# The message exactly as received or sent; kept apart so lists never load it.
email_raw = sa.Table(
    "email_raw",
    metadata,
    sa.Column("email_message_id", sa.Integer, sa.ForeignKey("email_messages.id"), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

email_attachments = sa.Table(
    "email_attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "email_message_id",
        sa.Integer,
        sa.ForeignKey("email_messages.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content_id", sa.String(250)),
    sa.Column("inline", sa.Boolean, nullable=False, default=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# Mail waiting to leave: one row per outgoing message, claimed by one worker
# at a time (lease), retried with backoff on 4xx or a dead server, failed on 5xx.
email_outbox = sa.Table(
    "email_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "email_message_id",
        sa.Integer,
        sa.ForeignKey("email_messages.id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("email_inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("mail_from", sa.String(254), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", TIMESTAMP, nullable=False, index=True),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", TIMESTAMP),
    sa.Column("last_error", sa.String(500)),
    sa.Column("sent_at", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # After sending: what the latest delivery report said ("delayed", "delivered")
    # and why (a delay's status and the remote server's words).
    sa.Column("delivery", sa.String(16)),
    sa.Column("delivery_note", sa.String(500)),
)


# A bounce or delivery report that matched no outgoing message: never a ticket,
# kept for admins to read (hub/email/bounce_log.py).
email_unmatched_bounces = sa.Table(
    "email_unmatched_bounces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_inbox_id", sa.Integer, sa.ForeignKey("inboxes.id"), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("sender", sa.String(254)),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(254)),
    sa.Column("status", sa.String(16)),
    sa.Column("diagnostic", sa.String(500)),
    sa.Column("original_message_id", sa.String(255)),
    sa.Column("received_at", TIMESTAMP, nullable=False, index=True),
    sa.UniqueConstraint("email_inbox_id", "message_id"),
)


# ---- two-factor login (revision 0014) ------------------------------------------

# One row an agent while two-factor is on or being set up: the TOTP secret
# (sealed, hub/sealing.py), when the agent confirmed it (None: set-up not yet
# confirmed, so not asked at login), and the latest time step a code was
# accepted for, so that no code counts twice.
agent_two_factor = sa.Table(
    "agent_two_factor",
    metadata,
    sa.Column(
        "agent_id",
        sa.Integer,
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("secret", sa.String(500), nullable=False),
    sa.Column("enabled_at", TIMESTAMP),
    sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0", default=0),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

# Single-use recovery codes: SHA-256 of each (80 random bits: no KDF needed).
agent_recovery_codes = sa.Table(
    "agent_recovery_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "agent_id",
        sa.Integer,
        sa.ForeignKey("agents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("used_at", TIMESTAMP),
    sa.UniqueConstraint("agent_id", "code_hash"),
)

# Hub-wide settings that admins change in the console (name -> JSON value),
# e.g. whether every agent must use two-factor login.
hub_settings = sa.Table(
    "hub_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL")),
)

# What admins changed, newest last (revision 0016; hub/audit.py).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", TIMESTAMP, nullable=False, index=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL")),
    sa.Column("agent_name", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)
