"""A half-way login (the right password, no second step yet) opens nothing: every
console page and endpoint, and the console socket, refuse it as they refuse no login.
The walk goes over the console's route table, so a new route is walked too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.routing import Mount, Route

from agent_console.access import ANYONE
from agent_console.routes import routes
from hub.core import Hub
from hub.models import Agent
from tests.clock import FakeClock
from tests.conftest import LiveServer
from tests.console_client import csrf_from, new_http
from tests.test_console_socket import close_code, console_socket
from tests.two_factor_client import password_step, turn_on

# The second step itself (and the password step before it) take a half-way login.
SECOND_STEP = re.compile(r"^/login(/|$)")
_PARAM = re.compile(r"\{(\w+)(:\w+)?\}")


def _console_endpoints() -> list[tuple[str, str]]:
    [console] = [r for r in routes if isinstance(r, Mount) and r.path == "/console"]
    found = []
    for route in console.routes:
        if not isinstance(route, Route) or SECOND_STEP.match(route.path):
            continue
        if getattr(route.endpoint, "access", None) is ANYONE:
            continue  # open to anyone by declaration (the invitation's join page)
        path = _PARAM.sub(lambda m: "1" if m.group(2) == ":id" else "x", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, "/console" + path))
    return found


ENDPOINTS = _console_endpoints()


@pytest.fixture(params=["code", "setup"])
async def half_way(
    request: pytest.FixtureRequest,
    hub: Hub,
    live_server: LiveServer,
    admin: Agent,
    agent: Agent,
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client whose agent gave the right password and owes a code ("code") or the
    required set-up ("setup"); and the page of that step."""
    clock = FakeClock()
    hub.two_factor.clock = clock
    await turn_on(hub, admin, clock)
    if request.param == "code":
        await turn_on(hub, agent, clock)
    else:
        await hub.two_factor.set_required(admin, True)
    async with new_http(live_server) as http:
        first = await password_step(http, agent.email)
        assert first.status_code == 303
        step = first.headers["location"]
        expected = {"code": "/console/login/code", "setup": "/console/login/two-factor-setup"}
        assert step == expected[request.param]
        yield http, step


def test_the_walk_covers_the_console() -> None:
    paths = {path for _, path in ENDPOINTS}
    assert len(ENDPOINTS) > 40
    assert {"/console/", "/console/security", "/console/team-security"} <= paths
    assert ("POST", "/console/logout") in ENDPOINTS


async def test_no_console_endpoint_accepts_a_half_way_login(
    half_way: tuple[httpx.AsyncClient, str],
) -> None:
    http, step = half_way
    page = await http.get(step)
    assert page.status_code == 200
    csrf = csrf_from(page.text)
    opened = []
    for method, path in ENDPOINTS:
        if method == "GET":
            response = await http.get(path)
        else:
            response = await http.post(path, data={"csrf_token": csrf})
        refused = response.status_code == 401 or (
            response.status_code == 303
            and urlsplit(response.headers["location"]).path == "/console/login"
        )
        if not refused:
            opened.append((method, path, response.status_code))
        # As JSON too (fetch calls answer 401 rather than redirect).
        as_json = await http.request(
            method,
            path,
            headers={"Accept": "application/json", "X-CSRF-Token": csrf},
            **({"json": {}} if method == "POST" else {}),
        )
        if as_json.status_code != 401:
            opened.append((method, path, as_json.status_code))
    assert opened == []
    # The half-way login was there all along: its step still answers.
    assert (await http.get(step)).status_code == 200


async def test_the_console_socket_refuses_a_half_way_login(
    half_way: tuple[httpx.AsyncClient, str], live_server: LiveServer
) -> None:
    http, _ = half_way
    cookie = http.cookies.get("hub_session")
    assert cookie
    async with console_socket(live_server, cookie) as ws:
        assert await close_code(ws) == 4401
