"""Deactivation across hub processes: the agent's console socket on another node
closes at once (the bus carries the news through Redis)."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub.composition.assemble import start_hub
from hub.models import Role
from tests.conftest import make_settings
from tests.console_client import AGENT_PASSWORD, log_in, new_http
from tests.frames import next_event
from tests.nodes import hub_env, hub_node
from tests.test_multinode import WAIT, cluster_settings  # noqa: F401 - the fixture

# Well under the sockets' own 30-second recheck: the close is the bus's doing.
CLOSED_WITHIN = 5.0


async def test_deactivation_on_one_node_closes_the_agents_socket_on_another(
    tmp_path,
    cluster_settings,  # noqa: F811
):
    env = hub_env(tmp_path, **cluster_settings)
    async with hub_node(env) as node_a, hub_node(env) as node_b:
        hub = await start_hub(make_settings(tmp_path, **cluster_settings))
        try:
            await hub.agents.create("ada@example.com", "Ada", AGENT_PASSWORD, Role.ADMIN)
            sam = await hub.agents.create("sam@example.com", "Sam", AGENT_PASSWORD, Role.AGENT)
        finally:
            await hub.stop()
        async with new_http(node_a) as admin_http, new_http(node_b) as agent_http:
            admin = await log_in(admin_http, "ada@example.com")
            agent = await log_in(agent_http, "sam@example.com")
            async with connect(
                f"{node_b.ws_url}/console/ws",
                origin=node_b.url,
                additional_headers={"Cookie": f"hub_session={agent.cookie}"},
            ) as ws:
                assert (await next_event(ws, WAIT))["type"] == "ready"
                answer = await admin.post_form(f"/console/agents/{sam.id}/deactivate", {})
                assert answer.status_code == 303
                try:
                    async with asyncio.timeout(CLOSED_WITHIN):
                        while True:
                            await ws.recv()
                except ConnectionClosed as closed:
                    assert closed.rcvd is not None
                    assert (closed.rcvd.code, closed.rcvd.reason) == (4401, "deactivated")
                else:  # pragma: no cover - the loop only ends by raising
                    raise AssertionError("the socket stayed open")
            assert (await agent.http.get("/console/")).status_code == 303
