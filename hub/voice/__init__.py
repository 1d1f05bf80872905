"""Phone calls and phone lines: call records built from call events."""
