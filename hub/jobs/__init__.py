"""Periodic background jobs, each run by one worker at a time."""
