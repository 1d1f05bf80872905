"""Agents: accounts, sessions, and who is online."""
