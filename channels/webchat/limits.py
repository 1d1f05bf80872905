"""The limits every widget socket shares: handshakes, open sockets, messages,
frames and page views."""

from __future__ import annotations

from channels.webchat import protocol, tracking
from hub.ratelimit import RateLimits, TokenBucket
from hub.settings import Settings


class WebchatLimits:
    """Limiters for all widget sockets. Handshakes and open sockets per address
    and messages per visitor are counted across nodes when Redis is configured
    (a client's sockets may sit on different ones); frames and pages per socket's
    visitor are counted per process."""

    def __init__(self, limits: RateLimits, settings: Settings) -> None:
        self.handshakes = limits.bucket(
            "widget-handshakes", protocol.HANDSHAKES_PER_SECOND, protocol.HANDSHAKE_BURST
        )
        self.connections = limits.connections(
            "widget-sockets",
            settings.widget_sockets_per_ip or protocol.MAX_CONNECTIONS_PER_IP,
            settings.widget_socket_ttl_seconds,
        )
        self.messages = limits.bucket(
            "visitor-messages", protocol.MESSAGES_PER_SECOND, protocol.MESSAGE_BURST
        )
        self.frames = TokenBucket(protocol.FRAMES_PER_SECOND, protocol.FRAME_BURST)
        self.pages = TokenBucket(tracking.PAGES_PER_SECOND, tracking.PAGE_BURST)
