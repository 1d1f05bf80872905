"""The invitation email: sent at once from the first email inbox that has an
outgoing server, through the outbox's mail transport (SMTP in `hub serve`).

It is not queued: the admin is always shown the link as well, so a mail that
cannot leave now is said so on the spot and the link is passed on by hand.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from hub.email.compose import new_message_id
from hub.email.inboxes import EmailInboxService
from hub.email.outbox import Delivery, EmailOutbox, Permanent, Temporary
from hub.models import Agent, utcnow

log = logging.getLogger(__name__)

# How long an admin waits on the invite form for the mail server, at most.
SEND_TIMEOUT_SECONDS = 20.0


class InvitationMail:
    def __init__(self, inboxes: EmailInboxService, outbox: EmailOutbox) -> None:
        self._inboxes = inboxes
        self._outbox = outbox

    async def send(self, invitee: Agent, inviter: Agent, link: str) -> str | None:
        """Mail the link to the invitee; None when sent, else why not (in words)."""
        senders = [inbox for inbox in await self._inboxes.list() if inbox.smtp.configured]
        if not senders:
            return "No email inbox has an outgoing server, so no email was sent."
        inbox = senders[0]
        message = EmailMessage(policy=SMTP)
        message["From"] = formataddr((inbox.display_name or inbox.name, inbox.address))
        message["To"] = invitee.email
        message["Subject"] = f"{inviter.name} invites you to the team's console"
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = f"<{new_message_id(inbox)}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(
            f"Hello {invitee.name},\n\n"
            f"{inviter.name} has invited you to answer customers in the console.\n"
            f"Open this link to choose your password (it works once, for 7 days):\n\n"
            f"{link}\n"
        )
        delivery = Delivery(
            outbox_id=0,
            conversation_id=0,
            seq=0,
            inbox_id=inbox.id,
            mail_from=inbox.address,
            recipients=(invitee.email,),
            raw=message.as_bytes(),
            attempts=0,
            created_at=utcnow(),
        )
        password = self._inboxes.password(inbox.smtp) if inbox.smtp.user else None
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self._outbox.transport.send(inbox.smtp, password, delivery)
        except (Permanent, Temporary, TimeoutError, OSError) as exc:
            log.warning("invitation mail to %s not sent: %s", invitee.email, exc)
            return f"The invitation email could not be sent ({exc}). Send the link yourself."
        return None
