"""The event bus (memory or Redis), its topics, and the unit of work that
sends a write's events only after it has committed."""
