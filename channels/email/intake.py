"""What every way in shares: reading raw bytes into an `InboundEmail` without
stalling the event loop."""

from __future__ import annotations

import asyncio

from channels.email.parse import parse_email
from hub.email.models import InboundEmail

# Parsing a large message takes long enough to stall every other session and
# request; above this size it runs in a thread.
INLINE_PARSE_BYTES = 256 * 1024


async def parse(raw: bytes) -> InboundEmail:
    """`parse_email` (which never raises), in a thread for large messages."""
    if len(raw) > INLINE_PARSE_BYTES:
        return await asyncio.to_thread(parse_email, raw)
    return parse_email(raw)
