"""Console login, sessions, CSRF, same-origin checks and roles, over real HTTP on loopback."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from agent_console.login import (
    LOGIN_BURST,
    LOGIN_MAX_DELAY_SECONDS,
    LOGIN_RATE_PER_SECOND,
    LoginLimits,
)
from hub.agents.service import SESSION_LIFETIME
from hub.core import Hub
from hub.models import Agent, Inbox, Role, utcnow
from hub.ratelimit import LocalLimiter, TokenBucket
from storage.tables import agent_sessions
from storage.tables import agents as agents_table
from tests.conftest import LiveServer
from tests.console_client import AGENT_PASSWORD, Console, csrf_from, log_in, new_http, visitor_says

# ---- login ------------------------------------------------------------------------------


async def test_login_page_is_served_with_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/console/login")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert 'name="csrf_token"' in response.text


async def test_console_sockets_may_go_only_to_the_hubs_own_origin(
    http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    response = await http.get("/console/login")
    directives = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    # HUB_PUBLIC_URL is unset in tests: the default http://127.0.0.1:8000.
    assert directives["connect-src"] == "'self' ws://127.0.0.1:8000"


async def test_right_password_logs_in_and_redirects_to_console(
    http: httpx.AsyncClient, agent: Agent
) -> None:
    page = await http.get("/console/login")
    response = await http.post(
        "/console/login",
        data={"email": agent.email, "password": AGENT_PASSWORD, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    home = await http.get("/console/")
    assert home.status_code == 200
    assert agent.name in home.text


async def test_login_rotates_the_session_and_its_csrf_token(
    http: httpx.AsyncClient, agent: Agent
) -> None:
    page = await http.get("/console/login")
    anonymous_cookie = http.cookies.get("hub_session")
    anonymous_csrf = csrf_from(page.text)
    console = await log_in(http, agent.email)
    assert console.cookie != anonymous_cookie
    assert console.csrf != anonymous_csrf


@pytest.mark.parametrize(
    ("email", "password"),
    [("sam@example.com", "wrong password"), ("nobody@example.com", AGENT_PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_wrong_credentials_get_one_generic_answer(
    http: httpx.AsyncClient, agent: Agent, email: str, password: str
) -> None:
    page = await http.get("/console/login")
    response = await http.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 400
    assert "Email or password is wrong" in response.text
    assert (await http.get("/console/")).status_code == 303


@pytest.fixture
def frozen_login_limits(live_server: LiveServer) -> LoginLimits:
    """Login buckets on a clock that stands still: no token refills while a slow
    machine hashes ten passwords, so the eleventh attempt is refused every time.
    The slow-down is kept but capped at 10 ms so that floods stay quick."""
    limits = LoginLimits(live_server.hub.limits)
    assert isinstance(limits.by_pair, LocalLimiter)
    limits.by_pair.bucket = TokenBucket(LOGIN_RATE_PER_SECOND, LOGIN_BURST, clock=lambda: 1000.0)
    limits.max_delay = 0.01
    live_server.app.state.console_login_limits = limits
    return limits


async def _attempts(
    live_server: LiveServer, address: str, email: str, password: str, count: int
) -> list[int]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with new_http(live_server, transport=transport) as client:
        csrf = csrf_from((await client.get("/console/login")).text)
        return [
            (
                await client.post(
                    "/console/login",
                    data={"email": email, "password": password, "csrf_token": csrf},
                )
            ).status_code
            for _ in range(count)
        ]


@pytest.mark.usefixtures("frozen_login_limits")
async def test_login_is_rate_limited_per_email_and_address(
    http: httpx.AsyncClient, agent: Agent
) -> None:
    csrf = csrf_from((await http.get("/console/login")).text)
    for _ in range(10):
        response = await http.post(
            "/console/login",
            data={"email": agent.email, "password": "wrong password", "csrf_token": csrf},
        )
        assert response.status_code == 400
    response = await http.post(
        "/console/login",
        data={"email": agent.email, "password": AGENT_PASSWORD, "csrf_token": csrf},
    )
    assert response.status_code == 429
    assert "Too many login attempts" in response.text
    assert (await http.get("/console/")).status_code == 303


@pytest.mark.usefixtures("frozen_login_limits")
async def test_a_flood_from_one_address_does_not_lock_the_agent_out_elsewhere(
    live_server: LiveServer, agent: Agent
) -> None:
    flood = await _attempts(live_server, "127.0.0.2", agent.email, "wrong password", 15)
    assert flood == [400] * 10 + [429] * 5
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with new_http(live_server, transport=transport) as client:
        page = await client.get("/console/login")
        response = await client.post(
            "/console/login",
            data={
                "email": agent.email,
                "password": AGENT_PASSWORD,
                "csrf_token": csrf_from(page.text),
            },
        )
        assert response.status_code == 303
        home = await client.get("/console/")
        # The five refused at the door (429) never reached a password check.
        assert (
            "10 failed login attempts since your last login (last from 127.0.0.2 at " in home.text
        )
        again = await client.get("/console/")
        assert again.status_code == 200
        assert "failed login" not in again.text


async def test_one_failure_is_shown_once_and_a_clean_login_shows_none(
    live_server: LiveServer, agent: Agent
) -> None:
    assert await _attempts(live_server, "127.0.0.5", agent.email, "wrong password", 1) == [400]
    for expected in ["1 failed login attempt since your last login (last from 127.0.0.5 at ", None]:
        async with new_http(live_server) as client:
            csrf = csrf_from((await client.get("/console/login")).text)
            response = await client.post(
                "/console/login",
                data={"email": agent.email, "password": AGENT_PASSWORD, "csrf_token": csrf},
            )
            assert response.status_code == 303
            home = await client.get("/console/calls")
            assert home.status_code == 200
            if expected is None:
                # The notice went with the first login; this one has nothing to show.
                assert "failed login" not in home.text
            else:
                assert expected in home.text


async def test_an_accounts_failures_slow_its_logins_down_but_never_refuse(
    live_server: LiveServer, agent: Agent
) -> None:
    limits = LoginLimits(live_server.hub.limits)
    delays = [limits.delay(n) for n in range(12)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert 0 < delays[3] < delays[4] < delays[5]
    assert max(delays) == LOGIN_MAX_DELAY_SECONDS == limits.delay(10**12)
    assert await live_server.hub.agents.recent_failed_logins(agent.email) == 0
    await _attempts(live_server, "127.0.0.6", agent.email, "wrong password", 2)
    await _attempts(live_server, "127.0.0.7", agent.email, "wrong password", 2)
    # Counted per account, whichever address the attempts came from.
    assert await live_server.hub.agents.recent_failed_logins(agent.email.upper()) == 4


async def test_login_without_csrf_token_is_refused(http: httpx.AsyncClient, agent: Agent) -> None:
    await http.get("/console/login")
    response = await http.post(
        "/console/login", data={"email": agent.email, "password": AGENT_PASSWORD}
    )
    assert response.status_code == 403
    assert (await http.get("/console/")).status_code == 303


async def test_login_follows_a_local_next_path(http: httpx.AsyncClient, agent: Agent) -> None:
    page = await http.get("/console/login?next=/console/conversations/7")
    response = await http.post(
        "/console/login",
        data={
            "email": agent.email,
            "password": AGENT_PASSWORD,
            "csrf_token": csrf_from(page.text),
            "next": "/console/conversations/7",
        },
    )
    assert response.headers["location"] == "/console/conversations/7"


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
async def test_login_ignores_a_next_target_off_the_site(
    http: httpx.AsyncClient, agent: Agent, target: str
) -> None:
    page = await http.get("/console/login")
    response = await http.post(
        "/console/login",
        data={
            "email": agent.email,
            "password": AGENT_PASSWORD,
            "csrf_token": csrf_from(page.text),
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"


async def test_logged_in_agent_visiting_login_goes_to_console(as_agent: Console) -> None:
    response = await as_agent.http.get("/console/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"


# ---- logged out ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/console/", "/console/conversations/1", "/console/agents", "/console/inboxes"]
)
async def test_pages_redirect_to_login_when_logged_out(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/console/login"
    assert parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize(
    "path", ["/console/api/conversations", "/console/conversations/1/messages?after=0"]
)
async def test_fetch_endpoints_answer_401_json_when_logged_out(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"


async def test_logout_clears_the_session(as_agent: Console) -> None:
    response = await as_agent.post_form("/console/logout", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert (await as_agent.http.get("/console/")).status_code == 303


async def test_logout_without_csrf_token_is_refused(as_agent: Console) -> None:
    response = await as_agent.http.post("/console/logout")
    assert response.status_code == 403
    assert (await as_agent.http.get("/console/")).status_code == 200


async def test_a_deleted_agent_is_logged_out(hub: Hub, as_agent: Console, agent: Agent) -> None:
    async with hub.db.write() as conn:
        await conn.execute(sa.delete(agents_table).where(agents_table.c.id == agent.id))
    response = await as_agent.http.get("/console/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


# ---- CSRF and origin -----------------------------------------------------------------------


async def _conversation(hub: Hub, website: Inbox) -> int:
    _, posted = await visitor_says(hub, website, "Hello?")
    return posted.conversation.id


async def test_post_without_csrf_token_is_refused_and_stores_nothing(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/messages", data={"text": "sneaky"}
    )
    assert response.status_code == 403
    assert [m.text for m in await hub.conversations.messages(conversation_id)] == ["Hello?"]


async def test_post_with_wrong_csrf_token_is_refused_and_stores_nothing(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/messages",
        json={"text": "sneaky"},
        headers={"X-CSRF-Token": as_agent.csrf[:-2] + "xx", "Accept": "application/json"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_csrf"
    assert [m.text for m in await hub.conversations.messages(conversation_id)] == ["Hello?"]


async def test_another_sessions_csrf_token_is_refused(
    hub: Hub, website: Inbox, as_agent: Console, as_admin: Console
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/status",
        data={"status": "resolved", "csrf_token": as_admin.csrf},
    )
    assert response.status_code == 403
    assert (await hub.conversations.get(conversation_id)).status.value == "open"


async def test_cross_origin_post_is_refused_even_with_a_valid_token(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/messages",
        data={"text": "from elsewhere", "csrf_token": as_agent.csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert [m.text for m in await hub.conversations.messages(conversation_id)] == ["Hello?"]


async def test_same_origin_post_with_origin_header_is_accepted(
    hub: Hub, website: Inbox, as_agent: Console, live_server: LiveServer
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/messages",
        data={"text": "from the console", "csrf_token": as_agent.csrf},
        headers={"Origin": live_server.url},
    )
    assert response.status_code == 303


async def test_body_over_the_limit_is_refused_with_413(
    hub: Hub, website: Inbox, as_agent: Console
) -> None:
    conversation_id = await _conversation(hub, website)
    response = await as_agent.http.post(
        f"/console/conversations/{conversation_id}/messages",
        data={"text": "x" * (300 * 1024), "csrf_token": as_agent.csrf},
    )
    assert response.status_code == 413
    assert len(await hub.conversations.messages(conversation_id)) == 1


# ---- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/agents", "/console/inboxes"])
async def test_agents_may_not_open_admin_pages(as_agent: Console, path: str) -> None:
    response = await as_agent.http.get(path)
    assert response.status_code == 403


async def test_agents_may_not_create_agents(hub: Hub, as_agent: Console) -> None:
    response = await as_agent.post_form(
        "/console/agents",
        {
            "name": "Mallory",
            "email": "mallory@example.com",
            "password": "long enough",
            "role": "admin",
        },
    )
    assert response.status_code == 403
    assert await hub.agents.authenticate("mallory@example.com", "long enough") is None


async def test_agents_do_not_see_admin_links(as_agent: Console) -> None:
    page = await as_agent.http.get("/console/")
    assert 'href="/console/agents"' not in page.text


async def test_admin_creates_an_agent_who_can_log_in(
    hub: Hub, as_admin: Console, live_server: LiveServer
) -> None:
    response = await as_admin.post_form(
        "/console/agents",
        {
            "name": "Nia Agent",
            "email": "nia@example.com",
            "password": "nia's password",
            "role": "agent",
        },
    )
    assert response.status_code == 303
    created = await hub.agents.authenticate("nia@example.com", "nia's password")
    assert created is not None and created.role is Role.AGENT and created.name == "Nia Agent"
    page = await as_admin.http.get(response.headers["location"])
    assert "Nia Agent" in page.text
    async with new_http(live_server) as client:
        await log_in(client, "nia@example.com", "nia's password")


async def test_creating_an_agent_with_a_short_password_shows_why(
    hub: Hub, as_admin: Console
) -> None:
    response = await as_admin.post_form(
        "/console/agents",
        {"name": "Short", "email": "short@example.com", "password": "123", "role": "agent"},
    )
    assert response.status_code == 400
    assert "at least 8 characters" in response.text
    assert "short@example.com" in response.text  # the form keeps what was typed
    assert [a.email for a in await hub.agents.list()] == ["admin@example.com"]


async def test_creating_an_agent_with_an_unknown_role_is_refused(
    hub: Hub, as_admin: Console
) -> None:
    response = await as_admin.post_form(
        "/console/agents",
        {"name": "Odd", "email": "odd@example.com", "password": "long enough", "role": "root"},
    )
    assert response.status_code == 400
    assert await hub.agents.authenticate("odd@example.com", "long enough") is None


async def test_inboxes_page_shows_the_script_tag_and_identity_secret(
    as_admin: Console, website: Inbox, live_server: LiveServer
) -> None:
    page = await as_admin.http.get("/console/inboxes")
    assert page.status_code == 200
    url = live_server.hub.settings.public_url
    snippet = (
        f"&lt;script src=&#34;{url}/widget.js&#34; data-site=&#34;{website.site_token}&#34; "
        "async&gt;&lt;/script&gt;"
    )
    assert snippet in page.text
    # The identity secret is on the website's own page (with its snippet again).
    page = await as_admin.http.get(f"/console/inboxes/{website.id}")
    assert snippet in page.text
    assert website.identity_secret and website.identity_secret in page.text
    assert "HMAC-SHA256" in page.text


async def test_a_copied_cookie_stops_working_after_logout(
    as_agent: Console, live_server: LiveServer
) -> None:
    copied = as_agent.cookie
    response = await as_agent.post_form("/console/logout", {})
    assert response.status_code == 303
    async with new_http(live_server, cookies={"hub_session": copied}) as thief:
        page = await thief.get("/console/")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")


async def test_a_new_password_ends_every_session(hub: Hub, as_agent: Console, agent: Agent) -> None:
    await hub.agents.set_password(agent.email, "a brand new password")
    page = await as_agent.http.get("/console/")
    assert page.status_code == 303


async def test_expired_sessions_are_refused_and_cleaned_up(hub: Hub, as_agent: Console) -> None:
    later = utcnow() + SESSION_LIFETIME + timedelta(seconds=1)
    assert await hub.agents.delete_expired_sessions(later) == 1
    page = await as_agent.http.get("/console/")
    assert page.status_code == 303


async def test_the_store_keeps_only_a_hash_of_the_session_token(
    hub: Hub, as_agent: Console
) -> None:
    async with hub.db.read() as conn:
        stored = (await conn.execute(sa.select(agent_sessions.c.id))).scalars().all()
    assert len(stored) == 1 and len(stored[0]) == 64
    assert stored[0] not in as_agent.cookie
