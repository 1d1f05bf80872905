"""Phone calls: CTI webhook, provider status callbacks and CDR import -> call events."""
