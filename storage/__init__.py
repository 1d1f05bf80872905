"""Conversation store: tables (SQLAlchemy Core), queries and Alembic migrations."""
