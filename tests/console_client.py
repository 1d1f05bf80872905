"""A logged-in agent's HTTP client for console tests, and a visitor who talks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol

import httpx

from hub.conversations.chat_ingest import Posted
from hub.core import Hub
from hub.models import Inbound, Inbox, Visitor


class HasUrl(Protocol):
    """A running hub: the live_server fixture or a node process."""

    url: str


AGENT_PASSWORD = "correct horse battery"

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


_PAGE_DATA = re.compile(r'<script type="application/json" id="console-data">(.*?)</script>', re.S)


def page_data(html: str) -> dict:
    """The data a console page hands its scripts, which draw the live elements from it."""
    match = _PAGE_DATA.search(html)
    assert match, "no console-data element"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def csrf_from(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


@dataclass
class Console:
    """A logged-in agent's browser: its HTTP client (with the session cookie) and CSRF token."""

    http: httpx.AsyncClient
    csrf: str

    @property
    def cookie(self) -> str:
        value = self.http.cookies.get("hub_session")
        assert value, "not logged in"
        return value

    async def post_json(self, path: str, payload: dict) -> httpx.Response:
        return await self.http.post(
            path,
            json=payload,
            headers={"X-CSRF-Token": self.csrf, "Accept": "application/json"},
        )

    async def post_form(self, path: str, fields: dict) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.csrf, **fields})


def new_http(server: HasUrl, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=10, **kwargs)


async def log_in(http: httpx.AsyncClient, email: str, password: str = AGENT_PASSWORD) -> Console:
    page = await http.get("/console/login")
    response = await http.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 303, response.text
    home = await http.get("/console/")
    assert home.status_code == 200
    return Console(http, csrf_from(home.text))


async def visitor_says(
    hub: Hub, inbox: Inbox, text: str, visitor: Visitor | None = None, client_id: str | None = None
) -> tuple[Visitor, Posted]:
    """A website visitor sends a chat message (as the widget channel would)."""
    if visitor is None:
        visitor = await hub.visitors.create(inbox, user_agent="Mozilla/5.0 Firefox/127.0")
    posted = await hub.conversations.ingest(
        Inbound.web_chat(inbox_id=inbox.id, text=text, client_id=client_id, visitor_id=visitor.id)
    )
    return visitor, posted
