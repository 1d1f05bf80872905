"""Event channel names. Only the services publish, and only after commit."""

# Every agent console subscribes here: what is no inbox's own (agents' presence,
# calls imported in bulk). Conversation events go to their inbox's channel.
AGENTS = "agents"


def inbox_channel(inbox_id: int) -> str:
    """An inbox's conversation and message events, including private notes and
    activity, which never go to visitors: the consoles of the agents who may
    read the inbox subscribe (hub/agents/access.py)."""
    return f"inbox:{inbox_id}"


def site_visitors(inbox_id: int) -> str:
    """A website's live visitors (page views, presence): the consoles of the
    agents who may read that website's inbox subscribe."""
    return f"visitors:{inbox_id}"


# Every widget socket subscribes here: whether any agent is online.
WIDGETS = "widgets"

# Hub processes tell each other that their set of online agents changed.
PRESENCE_SYNC = "presence-sync"


def visitor_channel(visitor_id: str) -> str:
    """Events one visitor may see: their messages, typing and read receipts."""
    return f"visitor:{visitor_id}"


def agent_channel(agent_id: int) -> str:
    """Events for one agent only, such as a ringing call's screen pop."""
    return f"agent:{agent_id}"


# Outgoing mail was queued: outbox senders (in `hub worker` or `hub serve`) wake up.
EMAIL_OUTBOX = "email-outbox"


def agent_sessions_channel(agent_id: int) -> str:
    """Some of one agent's sessions ended (deactivated, password changed): each of
    their console sockets, on every node, checks its own session and closes if it is over."""
    return f"agent-sessions:{agent_id}"
