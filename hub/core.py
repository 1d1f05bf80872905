"""The hub: settings, store, event bus and services, started and stopped together."""

from __future__ import annotations

from hub.agents import AgentService
from hub.bus import EventBus
from hub.calls import CallService
from hub.contacts import ContactService
from hub.conversations import ConversationService
from hub.inboxes import InboxService
from hub.phone_lines import PhoneLineService
from hub.presence import AgentPresence, shared_presence
from hub.security import VisitorTokens
from hub.settings import Settings
from hub.visitors import VisitorService
from storage.db import Database
from storage.migrate import ensure_migrated


class Hub:
    """Everything the edges (channels, console) call. Build with `Hub.start`."""

    def __init__(self, settings: Settings, db: Database, bus: EventBus) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.tokens = VisitorTokens(settings.secret_key.get())
        self.agents = AgentService(db)
        self.inboxes = InboxService(db)
        self.visitors = VisitorService(db, bus)
        self.conversations = ConversationService(db, bus)
        self.presence = AgentPresence(bus, shared_presence(settings.bus_url))
        self.contacts = ContactService(db, bus, self.visitors)
        self.phone_lines = PhoneLineService(db)
        self.calls = CallService(
            db, bus, self.conversations, self.agents, self.presence, self.phone_lines
        )

    @classmethod
    async def start(cls, settings: Settings) -> Hub:
        """Open the store (refusing an unmigrated one) and connect the bus."""
        db = Database(settings.database_url)
        try:
            await ensure_migrated(db.engine)
        except BaseException:
            await db.dispose()
            raise
        bus = EventBus(settings.bus_url)
        await bus.connect()
        hub = cls(settings, db, bus)
        await hub.presence.start()
        return hub

    async def stop(self) -> None:
        await self.presence.stop()
        await self.bus.disconnect()
        await self.db.dispose()
