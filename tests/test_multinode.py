"""Several hub processes sharing PostgreSQL and Redis, as behind a load balancer."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import AsyncExitStack

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.composition.assemble import start_hub
from hub.models import Role
from hub.ratelimit import RateLimits, RedisConnections
from storage.migrate import upgrade_async
from tests.conftest import make_settings
from tests.console_client import AGENT_PASSWORD, log_in, new_http
from tests.frames import next_event
from tests.nodes import hub_env, hub_node, private_redis
from tests.servers import REDIS_URL, postgres_database, require_redis
from tests.widget_client import WidgetClient

WAIT = 10.0
# Polling Redis for an entry to lapse: it sends no notice to await.
POLL = 0.05


@pytest.fixture
async def cluster_settings(tmp_path):  # type: ignore[no-untyped-def]
    """Shared settings for the nodes: one PostgreSQL database, one Redis namespace."""
    await require_redis()
    async with postgres_database() as database_url:
        await upgrade_async(database_url)
        yield {
            "HUB_DATABASE_URL": database_url,
            "HUB_REDIS_URL": f"{REDIS_URL}?prefix=hubtest-{secrets.token_hex(4)}:",
            "HUB_SECRET_KEY": "cluster-secret-" + secrets.token_hex(16),
        }


async def seed(tmp_path, env: dict[str, str], origins: list[str]):  # type: ignore[no-untyped-def]
    hub = await start_hub(make_settings(tmp_path, **env))
    try:
        inbox = await hub.inboxes.create_website("Cluster shop", origins)
        agent = await hub.agents.create("sam@example.com", "Sam", AGENT_PASSWORD, Role.AGENT)
    finally:
        await hub.stop()
    return inbox, agent


class ConsoleSocket:
    """An agent's console socket on one node."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws

    async def next(self, kind: str, **match: object) -> dict:
        async with asyncio.timeout(WAIT):
            while True:
                event = await next_event(self.ws, WAIT)
                if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event


async def test_visitor_and_agent_on_different_nodes_survive_a_node_being_killed(
    tmp_path, cluster_settings
):
    env = hub_env(tmp_path, **cluster_settings)
    async with hub_node(env) as node_a, hub_node(env) as node_b:
        origin = "http://shop.test"
        inbox, _ = await seed(tmp_path, cluster_settings, [origin])
        async with new_http(node_b) as http:
            console = await log_in(http, "sam@example.com")
            async with connect(
                f"{node_b.ws_url}/console/ws",
                origin=node_b.url,
                additional_headers={"Cookie": f"hub_session={console.cookie}"},
            ) as console_ws:
                agent_view = ConsoleSocket(console_ws)
                await agent_view.next("ready")

                visitor = WidgetClient.connect(node_a.ws_url, inbox.site_token, origin)
                async with visitor as on_a:
                    welcome = await on_a.hello()
                    # The agent's console is on node B; node A's widget knows someone is in.
                    online = (
                        welcome["agents_online"]
                        or (await on_a.recv_type("presence"))["agents_online"]
                    )
                    assert online is True
                    ack = await on_a.say("Hello from node A", "c-1")
                    seen = await agent_view.next("message")
                    assert seen["message"]["text"] == "Hello from node A"
                    conversation_id = ack["conversation_id"]

                    # Page views on node A reach node B's console, and node B lists
                    # the visitor among those online (presence shared through Redis).
                    await on_a.send(
                        {"type": "page", "url": "https://shop.test/pricing", "title": "Pricing"}
                    )
                    viewed = await agent_view.next("visitor")
                    while (viewed.get("page_view") or {}).get("title") != "Pricing":
                        viewed = await agent_view.next("visitor")
                    online = await console.http.get("/console/api/visitors")
                    assert welcome["visitor_id"] in [v["id"] for v in online.json()["visitors"]]

                    await on_a.send({"type": "typing", "on": True})
                    typing = await agent_view.next("typing", conversation_id=conversation_id)
                    assert typing["author"]["type"] == "visitor"

                    reply = await console.post_json(
                        f"/console/conversations/{conversation_id}/messages",
                        {"text": "Hello from node B", "client_id": "r-1"},
                    )
                    assert reply.status_code == 201
                    got = await on_a.recv_type("message")
                    while got["message"]["text"] != "Hello from node B":
                        got = await on_a.recv_type("message")

                    node_a.kill()
                    with pytest.raises(ConnectionClosed):
                        async with asyncio.timeout(WAIT):
                            while True:
                                await on_a.recv()

                # While the visitor has no connection, the agent writes again.
                missed = await console.post_json(
                    f"/console/conversations/{conversation_id}/messages",
                    {"text": "Are you still there?", "client_id": "r-2"},
                )
                assert missed.status_code == 201

                # The visitor's widget reconnects to the surviving node and resumes.
                async with WidgetClient.connect(node_b.ws_url, inbox.site_token, origin) as on_b:
                    resumed = await on_b.hello(
                        welcome["visitor_token"], last_seq=got["message"]["seq"]
                    )
                    assert [m["text"] for m in resumed["messages"]] == ["Are you still there?"]
                    # A retry of a message node A had stored is not stored twice.
                    again = await on_b.say("Hello from node A", "c-1")
                    assert again["seq"] == ack["seq"]
                    fresh = await on_b.say("Yes, I'm back", "c-2")

                history = await console.http.get(
                    f"/console/conversations/{conversation_id}/messages?after=0"
                )
                texts = [m["text"] for m in history.json()["messages"]]
                assert texts == [
                    "Hello from node A",
                    "Hello from node B",
                    "Are you still there?",
                    "Yes, I'm back",
                ]
                assert fresh["seq"] == 4


async def test_a_redis_restart_loses_no_message(tmp_path):
    async with private_redis() as redis_server, postgres_database() as database_url:
        await upgrade_async(database_url)
        settings = {
            "HUB_DATABASE_URL": database_url,
            "HUB_REDIS_URL": redis_server.url,
            "HUB_SECRET_KEY": "cluster-secret-" + secrets.token_hex(16),
        }
        env = hub_env(tmp_path, **settings)
        async with hub_node(env) as node:
            origin = "http://shop.test"
            inbox, _ = await seed(tmp_path, settings, [origin])
            async with new_http(node) as http:
                console = await log_in(http, "sam@example.com")
                async with WidgetClient.connect(node.ws_url, inbox.site_token, origin) as visitor:
                    welcome = await visitor.hello()
                    ack = await visitor.say("Before the restart", "c-1")
                    conversation_id = ack["conversation_id"]

                    await redis_server.stop()
                    # The store still takes messages; only live delivery waits.
                    during = await console.post_json(
                        f"/console/conversations/{conversation_id}/messages",
                        {"text": "During the restart", "client_id": "r-1"},
                    )
                    assert during.status_code == 201
                    await redis_server.start()

                    # The hub noticed the gap and closed the widget's socket (4000)…
                    with pytest.raises(ConnectionClosed) as closed:
                        async with asyncio.timeout(WAIT):
                            while True:
                                await visitor.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000

                # …so the widget reconnects and resumes from the store.
                async with WidgetClient.connect(node.ws_url, inbox.site_token, origin) as visitor:
                    resumed = await visitor.hello(welcome["visitor_token"], last_seq=ack["seq"])
                    assert [m["text"] for m in resumed["messages"]] == ["During the restart"]
                    # And live delivery works again.
                    await console.post_json(
                        f"/console/conversations/{conversation_id}/messages",
                        {"text": "After the restart", "client_id": "r-2"},
                    )
                    live = await visitor.recv_type("message")
                    assert live["message"]["text"] == "After the restart"


async def test_widget_sockets_per_ip_count_across_nodes_and_a_killed_nodes_lapse(
    tmp_path, cluster_settings
):
    limit, ttl = 3, 1.0
    env = hub_env(
        tmp_path,
        **cluster_settings,
        HUB_WIDGET_SOCKETS_PER_IP=str(limit),
        HUB_WIDGET_SOCKET_TTL_SECONDS=str(ttl),
    )
    origin = "http://shop.test"
    watcher = RateLimits(cluster_settings["HUB_REDIS_URL"])
    counted = watcher.connections("widget-sockets", limit, ttl)
    assert isinstance(counted, RedisConnections)

    async def refused(node) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidStatus) as refusal:
            async with WidgetClient.connect(node.ws_url, inbox.site_token, origin):
                pass
        assert refusal.value.response.status_code == 429
        return refusal.value.response.body.decode()

    try:
        async with hub_node(env) as node_a, hub_node(env) as node_b, AsyncExitStack() as open_:
            inbox, _ = await seed(tmp_path, cluster_settings, [origin])
            for node in (node_a, node_a, node_b):
                client = WidgetClient.connect(node.ws_url, inbox.site_token, origin)
                await (await open_.enter_async_context(client)).hello()
            assert await counted.count("127.0.0.1") == limit
            # The fourth is refused on either node.
            assert await refused(node_a) == "Too many connections from this address."
            assert await refused(node_b) == "Too many connections from this address."

            node_a.kill()
            loop = asyncio.get_running_loop()
            killed = loop.time()
            async with asyncio.timeout(WAIT):
                while True:
                    if await counted.count("127.0.0.1") == 1:  # node B's socket only
                        break
                    await asyncio.sleep(POLL)
            # Node A's two sockets stopped counting within one expiry.
            assert loop.time() - killed < ttl + 0.5
            for _ in range(limit - 1):
                client = WidgetClient.connect(node_b.ws_url, inbox.site_token, origin)
                await (await open_.enter_async_context(client)).hello()
            assert await refused(node_b) == "Too many connections from this address."
    finally:
        await watcher.close()
