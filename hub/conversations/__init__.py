"""Conversations and their messages: the one append that numbers messages,
reopens and previews, and web chat's group-committed ingest."""
