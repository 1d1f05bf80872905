"""The widget socket's handshake: the address's rate, the site token and its
allowed origins, the address's open sockets; then one `WidgetSession`."""

from __future__ import annotations

import logging

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from channels.webchat.endpoint import WidgetSession
from channels.webchat.limits import WebchatLimits
from hub.core import Hub
from hub.errors import HubError
from hub.inboxes.service import normalize_origin
from hub.models import Inbox

log = logging.getLogger(__name__)


def origin_allowed(origin: str | None, inbox: Inbox) -> bool:
    if not origin:
        return False
    try:
        return normalize_origin(origin) in inbox.allowed_origins
    except HubError:
        return False


async def widget_socket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    limits: WebchatLimits = websocket.app.state.webchat_limits
    ip = websocket.client.host if websocket.client else "unknown"
    # Before the site token lookup: a flood of handshakes costs no store query.
    if not await limits.handshakes.allow(ip):
        await websocket.send_denial_response(
            PlainTextResponse("Too many connection attempts from this address.", status_code=429)
        )
        return
    site = websocket.query_params.get("site", "")
    inbox = await hub.inboxes.by_site_token(site) if 0 < len(site) <= 64 else None
    if inbox is None or not origin_allowed(websocket.headers.get("origin"), inbox):
        log.info(
            "widget handshake refused: site %r origin %r",
            site[:64],
            websocket.headers.get("origin"),
        )
        await websocket.send_denial_response(
            PlainTextResponse("Unknown site or origin not allowed for it.", status_code=403)
        )
        return
    if not await limits.connections.acquire(ip):
        await websocket.send_denial_response(
            PlainTextResponse("Too many connections from this address.", status_code=429)
        )
        return
    try:
        await websocket.accept()
        await WidgetSession(hub, inbox, websocket, limits).run()
    finally:
        await limits.connections.release(ip)
