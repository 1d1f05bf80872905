"""Input that used to reach users as a 500 or a traceback: a malformed Origin on
the widget handshake, JSON nested deeper than the parser's recursion limit on
every JSON edge, and `NaN`/`Infinity`, which are not standard JSON."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hub.core import Hub
from hub.models import Inbox
from tests.conftest import LiveServer
from tests.console_client import Console
from tests.test_refusals import console_socket, stored_visitors
from tests.widget_client import WidgetClient

ORIGIN = "http://shop.test"
# Far past the standard library's recursion limit (1,000 frames) and orjson's 1,024 levels.
DEEP = "[" * 2_000 + "]" * 2_000
DEEP_OBJECT = '{"type":"ping","x":' + DEEP + "}"


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "origin", ["http://shop.test:99999", "http://shop.test:port.evil", "http://[::1", "http://[x"]
)
async def test_a_malformed_origin_is_refused_with_403_not_a_server_error(
    live_server: LiveServer,
    website: Inbox,
    origin: str,
    caplog: pytest.LogCaptureFixture,
):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{live_server.ws_url}/widget/ws?site={website.site_token}",
            additional_headers={"Origin": origin},
        ):
            pass
    assert refused.value.response.status_code == 403
    assert await stored_visitors(live_server.hub) == 0
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("frame", [DEEP_OBJECT, '{"type":"ping","x":NaN}', "[Infinity]"])
async def test_the_widget_socket_answers_deep_or_non_standard_json_with_bad_frame(
    live_server: LiveServer, website: Inbox, frame: str, caplog: pytest.LogCaptureFixture
):
    async with WidgetClient.connect(live_server.ws_url, website.site_token, ORIGIN) as client:
        await client.hello()
        await client.send(frame)
        error = await client.recv()
        await client.send({"type": "ping"})  # the socket goes on
        assert (await client.recv())["type"] == "pong"
    assert error["type"] == "error"
    assert error["code"] == "bad_frame"
    assert tracebacks(caplog) == []


async def test_the_console_socket_answers_deep_json_with_bad_frame(
    live_server: LiveServer, as_agent: Console, caplog: pytest.LogCaptureFixture
):
    async with console_socket(live_server, as_agent) as ws:
        await ws.send(DEEP_OBJECT)
        async with asyncio.timeout(5):
            while (error := json.loads(await ws.recv()))["type"] != "error":
                pass  # presence and other events the console is sent meanwhile
    assert error["code"] == "bad_frame"
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("body", [DEEP, '{"email": NaN}'])
async def test_console_login_with_deep_or_non_standard_json_is_a_client_error(
    live_server: LiveServer, body: str, caplog: pytest.LogCaptureFixture
):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        response = await http.post(
            "/console/login",
            content=body,
            headers={"Content-Type": "application/json", "Origin": live_server.url},
        )
    assert 400 <= response.status_code < 500
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("body", [DEEP, '{"event": "newCall", "direction": "in", "x": Infinity}'])
async def test_the_cti_webhook_answers_deep_or_non_standard_json_with_400(
    hub: Hub, live_server: LiveServer, body: str, caplog: pytest.LogCaptureFixture
):
    _line, token = await hub.phone_lines.create("Support line", ["020 7946 0000"], "GB")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        response = await http.post(
            f"/voice/cti/{token}", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"
    assert await hub.calls.list() == []
    assert tracebacks(caplog) == []
