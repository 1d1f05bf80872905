"""Building blocks for email tests: an inbox wired to a sink, and inbound messages."""

from __future__ import annotations

import itertools
from email.utils import make_msgid

import sqlalchemy as sa

from hub.core import Hub
from hub.email.inboxes import EmailInbox, EmailInboxConfig, MailServer
from hub.email.models import Address, Attachment, Bounce, InboundEmail, OutboxState, TlsMode
from storage.tables import email_messages, email_outbox

SUPPORT = "support@shop.test"
# The receiving server the tests trust (HUB_MAIL_TRUSTED_AUTHSERV_ID, set for
# every test by conftest.make_settings): acknowledgements need its pass.
TRUSTED_AUTHSERV = "mx.shop.test"
MAIL_TEST_ENV = {"HUB_MAIL_TRUSTED_AUTHSERV_ID": TRUSTED_AUTHSERV}
_numbers = itertools.count(1)


def passing_auth(address: str, authserv_id: str = TRUSTED_AUTHSERV) -> str:
    """An Authentication-Results value: `address`'s domain passed DKIM, SPF and DMARC."""
    domain = address.rpartition("@")[2]
    return (
        f"{authserv_id}; dkim=pass header.d={domain}; spf=pass smtp.mailfrom={address};"
        f" dmarc=pass header.from={domain}"
    )


async def make_email_inbox(
    hub: Hub, smtp_port: int | None = None, address: str = SUPPORT, **config: object
) -> EmailInbox:
    settings = EmailInboxConfig(
        name=config.pop("name", "Support"),  # type: ignore[arg-type]
        address=address,
        display_name=config.pop("display_name", "Shop Support"),  # type: ignore[arg-type]
        smtp=MailServer("127.0.0.1", smtp_port, TlsMode.NONE) if smtp_port else MailServer(),
        **config,  # type: ignore[arg-type]
    )
    inbox, _token = await hub.email_inboxes.create(settings)
    return inbox


def inbound(
    text: str = "Hello, my order has not arrived.",
    *,
    sender: str = "alice@customer.test",
    name: str | None = "Alice Doe",
    subject: str = "Where is my order?",
    to: tuple[str, ...] = (SUPPORT,),
    cc: tuple[str, ...] = (),
    message_id: str | None = "",
    in_reply_to: tuple[str, ...] = (),
    references: tuple[str, ...] = (),
    automatic: bool = False,
    bounce: Bounce | None = None,
    attachments: tuple[Attachment, ...] = (),
    html: str | None = None,
    parse_error: str | None = None,
    visible_text: str | None = None,
    authentication_results: tuple[str, ...] | None = None,
) -> InboundEmail:
    """A received message as the parser would give it ("" message_id: a fresh one;
    by default the trusted server passed the sender's domain)."""
    if message_id == "":
        message_id = make_msgid(f"t{next(_numbers)}", "customer.test").strip("<>")
    raw = f"Message-ID: <{message_id}>\r\nSubject: {subject}\r\n\r\n{text}\r\n".encode()
    return InboundEmail(
        raw=raw,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        sender=Address(sender, name),
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        subject=subject,
        text=text,
        visible_text=text if visible_text is None else visible_text,
        html=html,
        attachments=attachments,
        automatic=automatic,
        authentication_results=(
            (passing_auth(sender),) if authentication_results is None else authentication_results
        ),
        bounce=bounce,
        parse_error=parse_error,
    )


async def fail_delivery(hub: Hub, conversation_id: int, seq: int, reason: str) -> None:
    """The reply at `seq` failed for good (as the outbox records a permanent refusal)."""
    async with hub.db.write() as conn:
        email_id = await conn.scalar(
            sa.select(email_messages.c.id)
            .where(email_messages.c.conversation_id == conversation_id)
            .where(email_messages.c.seq == seq)
        )
        await conn.execute(
            email_outbox.update()
            .where(email_outbox.c.email_message_id == email_id)
            .values(state=OutboxState.FAILED.value, last_error=reason)
        )
