"""The screen pop: a ringing call shown to the agents it rings (told after commit)."""

from __future__ import annotations

from hub.agents.presence import AgentPresence
from hub.agents.service import AgentService
from hub.conversations.service import ConversationService
from hub.events import topics
from hub.events.bus import EventBus
from hub.voice.call_reads import CallReads
from hub.voice.models import POP_RECENT, Call, CallFilter


class ScreenPop:
    """Pops a ringing call on the screens of the agents the phone system rang."""

    def __init__(
        self,
        bus: EventBus,
        calls: CallReads,
        conversations: ConversationService,
        agents: AgentService,
        presence: AgentPresence,
    ) -> None:
        self._bus = bus
        self._calls = calls
        self._conversations = conversations
        self._agents = agents
        self._presence = presence

    async def pop(self, call: Call) -> None:
        """Screen pop for the agents the phone system rang, or every online agent."""
        agents = await self._agents.list()
        named = {name.casefold() for name in call.agents_rung}
        targets = {a.id for a in agents if {a.name.casefold(), a.email.casefold()} & named}
        if not targets:
            targets = self._presence.online_agent_ids()
        recent = [
            c
            for c in await self._calls.list(CallFilter(contact_id=call.contact_id))
            if c.id != call.id
        ]
        conversation = await self._conversations.get(call.conversation_id)
        known = bool(recent) or conversation.contact_name is not None or conversation.last_seq > 0
        frame = {
            "type": "call_ringing",
            "call": call.to_wire(),
            "known": known,
            "contact": conversation.to_wire()["contact"],
            "recent_calls": [c.to_wire() for c in recent[:POP_RECENT]],
            "conversation": {
                "id": conversation.id,
                "status": conversation.status.value,
                "preview": conversation.preview,
            },
        }
        for agent_id in sorted(targets):
            await self._bus.publish(topics.agent_channel(agent_id), frame)
