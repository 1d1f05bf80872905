"""The hub with the channels' transports plugged in: what every process starts."""

from __future__ import annotations

from channels.email.intake import configure_reader
from channels.email.smtp_sender import SmtpTransport
from hub.core import Hub
from hub.settings import Settings


async def start_hub(settings: Settings) -> Hub:
    """The hub with the channels' transports plugged in (mail leaves over SMTP,
    and is read in worker processes within `settings.mail`'s budget)."""
    configure_reader(settings.mail)
    return await Hub.start(settings, mail=SmtpTransport())
