"""Inboxes (one per website, support address or phone line) and their
business hours."""
