"""The hub: settings, store, event bus and services, started and stopped together."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from hub.agents.access import AccessService
from hub.agents.accounts import AgentAccounts
from hub.agents.invitation_mail import InvitationMail
from hub.agents.invitations import InvitationLinks
from hub.agents.presence import AgentPresence, shared_presence
from hub.agents.service import AgentService
from hub.agents.two_factor import TwoFactorService
from hub.audit import AuditLog
from hub.backends import Backends
from hub.contacts.resolver import ContactResolver
from hub.contacts.service import ContactService
from hub.conversations.chat_threading import WebChatThreading
from hub.conversations.log import ConversationLog
from hub.conversations.pipeline import InboundPipeline
from hub.conversations.service import ConversationService
from hub.email.bounce_log import BounceLog
from hub.email.inboxes import EmailInboxService
from hub.email.outbox import EmailOutbox, MailTransport
from hub.email.secrets import MailSecrets
from hub.email.threading import EmailThreading
from hub.email.tickets import EmailTicketService
from hub.errors import Unavailable, translated
from hub.events.bus import EventBus
from hub.events.publisher import Publisher
from hub.events.unit_of_work import Writes
from hub.inboxes.business_hours import BusinessHoursService
from hub.inboxes.service import InboxService
from hub.models import Channel
from hub.ratelimit import RateLimits
from hub.sealing import Sealer
from hub.security import VisitorTokens
from hub.settings import Settings, redacted_url
from hub.visitors.campaigns import CampaignService
from hub.visitors.presence import presence_backend
from hub.visitors.service import VisitorService
from hub.visitors.tracking import TrackingService
from hub.voice.calls import CallService
from hub.voice.phone_lines import PhoneLineService
from hub.voice.threading import VoiceThreading
from storage.db import Database
from storage.errors import short_reason
from storage.migrate import ensure_migrated


class Hub:
    """Everything the edges (channels, console) call. Build with `Hub.start`
    (or `hub.composition.assemble.start_hub`, which gives it the channels' transports)."""

    def __init__(
        self, settings: Settings, db: Database, bus: EventBus, mail: MailTransport
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        # Every write's events leave through here, after its commit.
        self.publisher = Publisher(bus)
        self.writes = Writes(db, self.publisher)
        self.tokens = VisitorTokens(settings.secret_key.get(), settings.visitor_token_days)
        # Provider tokens and identity secrets at rest (mail passwords: MailSecrets).
        previous_keys = [key.get() for key in settings.previous_secret_keys]
        self.sealer = Sealer(settings.secret_key.get(), previous_keys)
        self.agents = AgentService(db)
        self.access = AccessService(db)
        self.audit = AuditLog(db)
        self.two_factor = TwoFactorService(db, self.sealer)  # TOTP secrets sealed
        self.inboxes = InboxService(db, self.sealer)
        self.visitors = VisitorService(self.writes)
        # Every channel's inbound items enter through one pipeline (contact,
        # conversation, the one append); each channel brings its threading.
        self.pipeline = InboundPipeline(ConversationLog(), ContactResolver())
        self.pipeline.route(Channel.WEBSITE, WebChatThreading(self.pipeline.log))
        self.conversations = ConversationService(self.writes, self.pipeline)
        # The team as admins and agents manage it (invitations, deactivation, profiles).
        self.accounts = AgentAccounts(
            db, self.agents, self.conversations, bus, InvitationLinks(settings.secret_key.get())
        )
        # One registry for shared state, and one Redis client behind it (hub/backends.py).
        self.backends = Backends(settings.bus_url)
        self.presence = AgentPresence(bus, shared_presence(self.backends))
        self.limits = RateLimits(self.backends)
        # Live visitors and proactive campaigns (hub/visitors/).
        self.visitor_presence = presence_backend(self.backends)
        self.tracking = TrackingService(
            db,
            bus,
            self.visitor_presence,
            settings.tracking_strip_params,
            settings.pageview_retention_days,
        )
        self.business_hours = BusinessHoursService(db)
        self.campaigns = CampaignService(
            db, bus, self.visitor_presence, self.business_hours, self.presence.any_online
        )
        self.tracking.campaigns = self.campaigns

        self.contacts = ContactService(self.writes, self.visitors)
        self.phone_lines = PhoneLineService(db, self.sealer)
        self.calls = CallService(
            self.writes,
            self.pipeline,
            self.conversations,
            self.agents,
            self.presence,
            self.phone_lines,
        )
        self.pipeline.route(Channel.VOICE, VoiceThreading())
        # Email (hub/email/): inboxes, tickets, and the outbox that sends replies.
        self.mail_secrets = MailSecrets(settings.secret_key.get(), previous_keys)
        self.email_inboxes = EmailInboxService(
            db,
            self.mail_secrets,
            allow_private_hosts=settings.mail.allow_private_hosts,
        )
        self.email = EmailTicketService(
            self.writes,
            self.pipeline,
            self.email_inboxes,
            self.visitor_presence,
            trusted_authserv_id=settings.mail.trusted_authserv_id,
            acks_per_inbox_per_hour=settings.mail.acks_per_inbox_per_hour,
        )
        self.pipeline.route(Channel.EMAIL, EmailThreading())
        # Replies on an email ticket (or a chat that goes on by email) leave as mail.
        self.conversations.reply_hooks.append(self.email.reply_by_email)
        self.conversations.away_form_hooks.append(self.email.away_form_left_address)
        self.outbox = EmailOutbox(db, bus, self.email_inboxes, self.email.publish_state, mail)
        self.email.on_queued = self.outbox.notify
        self.invitation_mail = InvitationMail(self.email_inboxes, self.outbox)
        self.bounce_log = BounceLog(db)  # bounces that matched no sent mail (admins)

    @classmethod
    async def start(cls, settings: Settings, *, mail: MailTransport) -> Hub:
        """Open the store (refusing an unmigrated one) and connect the bus; `mail`
        carries the outbox's mail away (hub.composition.assemble.start_hub gives SMTP)."""
        db = Database(settings.database_url, background_checkpoints=True)
        try:
            with translated():
                await ensure_migrated(db.engine)
        except (OSError, SQLAlchemyError) as exc:
            await db.dispose()
            raise Unavailable(
                f"Cannot reach the database at {redacted_url(settings.database_url)} "
                f"(HUB_DATABASE_URL): {short_reason(exc)}"
            ) from exc
        except BaseException:
            await db.dispose()
            raise
        bus = EventBus(settings.bus_url)
        try:
            await bus.connect()
        except Exception as exc:
            await db.dispose()
            raise Unavailable(
                f"Cannot reach the event bus at {redacted_url(settings.bus_url)} "
                f"(HUB_REDIS_URL): {short_reason(exc)}"
            ) from exc
        hub = cls(settings, db, bus, mail)
        await hub.presence.start()
        db.start_checkpoints()
        return hub

    async def stop(self) -> None:
        await self.conversations.close()  # stores what is queued, then its writer ends
        await self.tracking.close()  # likewise the queued visits and page views,
        await self.visitors.close()  # and the new visitors and last-seen times
        await self.presence.stop()
        await self.visitor_presence.close()
        await self.limits.close()
        await self.backends.close()
        await self.bus.disconnect()
        await self.db.dispose()
