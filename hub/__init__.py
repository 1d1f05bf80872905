"""Contact hub core: domain model, services, event bus, settings and app assembly."""
