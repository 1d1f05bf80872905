"""Navigation frames from the widget: `page`, `visibility`, `leave` (docs/widget-protocol.md).

The edge checks shape, size and rate; the hub (hub.tracking) validates the
URL's scheme, strips secret parameters, stores and tells the agents. A
session whose hello said `"track": false` (GPC, Do Not Track, or the site's
`data-track="off"`) has these frames ignored: nothing of its navigation is
stored or shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.webchat.protocol import ProtocolError, parse_str
from hub.visitors.pages import MAX_TITLE_CHARS, MAX_URL_CHARS

if TYPE_CHECKING:
    from channels.webchat.endpoint import WidgetSession

# A single-page app changes its address on every click, sometimes several
# times per click (redirects, replaceState for filters): a burst of 10, then
# one page every two seconds. More is dropped with `rate_limited`; it never
# slows down other visitors (each visitor has their own bucket).
PAGE_BURST = 10
PAGES_PER_SECOND = 0.5


@dataclass(frozen=True)
class Page:
    url: str | None
    title: str | None
    referrer: str | None


def parse_page(frame: dict[str, Any]) -> Page:
    url = parse_str(frame.get("url"), "url", MAX_URL_CHARS)
    if not url:
        raise ProtocolError("invalid", "url is required.")
    return Page(
        url=url,
        title=parse_str(frame.get("title"), "title", MAX_TITLE_CHARS),
        referrer=parse_str(frame.get("referrer"), "referrer", MAX_URL_CHARS),
    )


def parse_visibility(frame: dict[str, Any]) -> bool:
    visible = frame.get("visible")
    if not isinstance(visible, bool):
        raise ProtocolError("invalid", "visible must be true or false.")
    return visible


async def on_page(session: WidgetSession, frame: dict[str, Any]) -> None:
    assert session.visitor is not None
    page = parse_page(frame)
    if not session.track:
        return
    if not session.limits.pages.allow(session.visitor.id):
        raise ProtocolError("rate_limited", "Too many page views; this one was not recorded.")
    await session.back()
    await session.hub.tracking.page_view(
        session.visitor, session.inbox, page.url, page.title, page.referrer
    )


async def on_visibility(session: WidgetSession, frame: dict[str, Any]) -> None:
    assert session.visitor is not None
    visible = parse_visibility(frame)
    if visible:
        await session.back()
    if session.track and session.present:
        await session.hub.tracking.visibility(session.visitor, session.inbox, visible)


async def on_leave(session: WidgetSession, frame: dict[str, Any]) -> None:
    await session.leave()


HANDLERS = {"page": on_page, "visibility": on_visibility, "leave": on_leave}
