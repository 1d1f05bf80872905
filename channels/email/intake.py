"""What every way in shares: reading raw bytes into an `InboundEmail` without
stalling the event loop (see `channels.email.reader`)."""

from __future__ import annotations

from hub.email.models import InboundEmail
from hub.settings import MailSettings

from .parse import unreadable
from .reader import READER, ReaderLimits, TooComplex, default_workers

__all__ = [
    "TooComplex",
    "close_reader",
    "configure_reader",
    "parse",
    "parse_or_keep",
    "start_reader",
]


def configure_reader(mail: MailSettings) -> None:
    """Take the budget and the number of reading processes from the settings."""
    limits = ReaderLimits(
        workers=mail.parse_workers or default_workers(), seconds=float(mail.parse_seconds)
    )
    if limits != READER.limits:
        READER.close()
        READER.limits = limits


async def start_reader() -> None:
    """Start the reading processes now, off the event loop, so that the first
    mail neither waits for them nor finds the loop busy starting them."""
    await READER.started()


def close_reader() -> None:
    """Stop the reading processes (a later read starts them again)."""
    READER.close()


async def parse(raw: bytes) -> InboundEmail:
    """The message read in a worker process; `TooComplex` when it is refused.

    For the ways in that can answer the sender (SMTP, LMTP, HTTP): they refuse."""
    return await READER.read(raw)


async def parse_or_keep(raw: bytes) -> InboundEmail:
    """The message read, or for one that is too complex an "unreadable" message
    that keeps the raw bytes: for the ways in that cannot refuse (IMAP, where
    the message already sits in the mailbox)."""
    try:
        return await READER.read(raw)
    except TooComplex as exc:
        return unreadable(raw, f"too complex to read: {exc}", show_raw=False)
