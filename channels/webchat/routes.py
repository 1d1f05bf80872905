"""HTTP side of the web chat channel: the widget script, its socket and the demo page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from channels.webchat.handshake import widget_socket
from hub.core import Hub
from hub.inboxes.service import DEMO_SITE_TOKEN
from widget import WIDGET_DIR

# The demo site created by `hub bootstrap`; its token is public by design.

# Browsers may reuse the script for a few minutes; a new release shows up soon.
WIDGET_CACHE_SECONDS = 300


async def widget_js(request: Request) -> Response:
    body = (WIDGET_DIR / "widget.js").read_bytes()
    return Response(
        body,
        media_type="application/javascript; charset=utf-8",
        headers={
            "Cache-Control": f"public, max-age={WIDGET_CACHE_SECONDS}",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


async def demo_page(request: Request) -> Response:
    settings = request.app.state.settings
    hub: Hub = request.app.state.hub
    inbox = await hub.inboxes.by_site_token(DEMO_SITE_TOKEN) if settings.demo else None
    if inbox is None:
        return PlainTextResponse(
            "No demo site. Run `hub bootstrap` with HUB_DEMO=true to create it.", status_code=404
        )
    page = (WIDGET_DIR / "demo.html").read_text(encoding="utf-8")
    page = page.replace("__HUB_URL__", settings.public_url).replace(
        "__SITE_TOKEN__", DEMO_SITE_TOKEN
    )
    return HTMLResponse(page)


routes = [
    Route("/widget.js", widget_js),
    Route("/demo", demo_page),
    Route("/demo/{section}", demo_page),  # the demo shop's pages (one page, pushState)
    WebSocketRoute("/widget/ws", widget_socket),
]
