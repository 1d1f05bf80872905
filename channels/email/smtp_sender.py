"""Outgoing mail over SMTP (aiosmtplib): the hub's `MailTransport` for the outbox.

The outbox (hub/email/outbox.py) claims, retries and records; this only hands
one message to the inbox's SMTP server and says, in the outbox's words, why a
server did not take it: `Permanent` for a 5xx answer, `Temporary` for a 4xx
answer, a refused connection or a timeout.
"""

from __future__ import annotations

import aiosmtplib

from hub.email.inboxes import MailServer
from hub.email.models import TlsMode
from hub.email.outbox import Delivery, Permanent, Temporary

SMTP_TIMEOUT_SECONDS = 30.0


class SmtpTransport:
    """Sends each delivery in its own SMTP session."""

    async def send(self, server: MailServer, password: str | None, delivery: Delivery) -> None:
        try:
            await aiosmtplib.send(
                delivery.raw,
                sender=delivery.mail_from,
                recipients=list(delivery.recipients),
                hostname=server.host,
                port=server.port,
                use_tls=server.tls is TlsMode.TLS,
                start_tls=server.tls is TlsMode.STARTTLS,
                username=server.user,
                password=password,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(500 <= code < 600 for code in codes):
                raise Permanent(reason) from exc
            raise Temporary(reason) from exc
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                raise Permanent(reason) from exc
            raise Temporary(reason) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise Temporary(f"{server.host}:{server.port}: {exc}") from exc
