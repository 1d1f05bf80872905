"""Email tickets: inboxes, threading, received mail, replies, and the outbox
that hands queued mail to a delivery transport (channels/email sends it)."""
