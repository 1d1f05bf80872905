"""The console's "test this site": does an allowed origin answer, and is the widget
snippet of this website on its page?

The hub fetches the page itself, so the check must not become a way to make it
reach services inside its own network: as hub/email/mail_hosts.py does for mail
servers, a host that is, or resolves to, a loopback, link-local or private
address is refused (unless HUB_SITE_CHECK_ALLOW_PRIVATE is set), the address the
connection really reached is checked again (DNS may answer differently the
second time), redirects are followed by hand with each hop checked, and only
the first bytes of the page are read, under a short timeout.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from hub.email.mail_hosts import refuse_private
from hub.errors import InvalidInput
from hub.inboxes.service import normalize_origin

CHECK_SECONDS = 5.0
MAX_PAGE_BYTES = 512 * 1024  # enough for a page's <head> and <body> start
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class SiteCheck:
    origin: str
    answered: bool
    status: int | None = None
    snippet_found: bool = False
    problem: str | None = None
    refused: bool = False  # not fetched: the origin is not a public address

    def to_wire(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "answered": self.answered,
            "status": self.status,
            "snippet_found": self.snippet_found,
            "problem": self.problem,
            "refused": self.refused,
        }


async def check_site(origin: str, site_token: str, *, allow_private: bool = False) -> SiteCheck:
    """Fetch `origin`'s front page; InvalidInput for an origin that is not public."""
    url = normalize_origin(origin) + "/"
    async with httpx.AsyncClient(
        timeout=CHECK_SECONDS, follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            host = httpx.URL(url).host
            if not allow_private:
                await _refuse_private(host)
            try:
                status, location, body = await _get(client, url, allow_private)
            except _PrivatePeer as exc:
                raise InvalidInput(
                    f"origin: {host} reached a private address ({exc}); "
                    "set HUB_SITE_CHECK_ALLOW_PRIVATE=true to test sites on this network",
                    "origin",
                ) from None
            except httpx.HTTPError as exc:
                return SiteCheck(origin, False, problem=_describe(exc))
            if location is None:
                found = f'data-site="{site_token}"'.encode() in body
                return SiteCheck(origin, True, status, found)
            url = urljoin(url, location)
            if not url.startswith(("http://", "https://")):
                return SiteCheck(origin, True, status, problem="redirected away from the web")
    return SiteCheck(origin, True, status, problem="too many redirects")


async def _refuse_private(host: str) -> None:
    try:
        await refuse_private(host, "origin")
    except InvalidInput as exc:
        # mail_hosts names the mail setting; this check has its own.
        message = exc.message.split("; set HUB_MAIL", 1)[0]
        if "private" in message:
            message += "; set HUB_SITE_CHECK_ALLOW_PRIVATE=true to test sites on this network"
        raise InvalidInput(message, "origin") from None


class _PrivatePeer(Exception):
    pass


async def _get(
    client: httpx.AsyncClient, url: str, allow_private: bool
) -> tuple[int, str | None, bytes]:
    async with client.stream("GET", url, headers={"User-Agent": "contact-hub site check"}) as r:
        if not allow_private:
            stream = r.extensions.get("network_stream")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if peer is not None and not ipaddress.ip_address(peer[0].split("%")[0]).is_global:
                raise _PrivatePeer(peer[0])
        if r.is_redirect:
            return r.status_code, r.headers.get("location"), b""
        body = b""
        async for chunk in r.aiter_bytes():
            body += chunk
            if len(body) >= MAX_PAGE_BYTES:
                break
        return r.status_code, None, body


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {CHECK_SECONDS:g} seconds"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return type(exc).__name__
