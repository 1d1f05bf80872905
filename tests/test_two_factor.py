"""Two-factor login (TOTP with recovery codes) over real HTTP on loopback: set-up, the
login's second step, replays and the time window, the login limits, turning it off,
and what admins can do (require it for everyone, reset an agent's)."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from agent_console import auth
from agent_console.login import LOGIN_BURST, LOGIN_RATE_PER_SECOND, LoginLimits
from hub.agents.two_factor import TwoFactorState
from hub.core import Hub
from hub.models import Agent
from hub.ratelimit import LocalLimiter, TokenBucket
from storage.tables import agent_recovery_codes, agent_two_factor
from tests.clock import FakeClock
from tests.conftest import LiveServer
from tests.console_client import Console, csrf_from, log_in, new_http
from tests.two_factor_client import (
    Authenticator,
    code_step,
    log_in_with_code,
    password_step,
    turn_on,
)

_CODES = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


@pytest.fixture
def clock(hub: Hub) -> FakeClock:
    """The two-factor codes' time, moved by the test (no waiting 30 seconds)."""
    fake = FakeClock()
    hub.two_factor.clock = fake
    return fake


@pytest.fixture
def fast_limits(live_server: LiveServer) -> LoginLimits:
    """The login limits on a clock that stands still, the slow-down capped at 10 ms."""
    limits = LoginLimits(live_server.hub.limits)
    assert isinstance(limits.by_pair, LocalLimiter)
    limits.by_pair.bucket = TokenBucket(LOGIN_RATE_PER_SECOND, LOGIN_BURST, clock=lambda: 1000.0)
    limits.max_delay = 0.01
    live_server.app.state.console_login_limits = limits
    return limits


async def _console_opens(http: httpx.AsyncClient) -> bool:
    return (await http.get("/console/")).status_code == 200


# ---- set-up ---------------------------------------------------------------------------


async def test_set_up_refuses_a_wrong_code_and_a_right_one_turns_it_on(
    hub: Hub, as_agent: Console, agent: Agent, clock: FakeClock
) -> None:
    page = await as_agent.http.get("/console/security")
    assert page.status_code == 200
    assert '<svg viewBox="0 0' in page.text and 'class="qr-code"' in page.text
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text)
    assert secret
    app = Authenticator(secret.group(1), clock)
    # A reload shows the same secret: the agent may have scanned it already.
    assert secret.group(1) in (await as_agent.http.get("/console/security")).text

    wrong = "000000" if app.code() != "000000" else "111111"
    refused = await as_agent.post_form("/console/security/two-factor", {"code": wrong})
    assert refused.status_code == 400
    assert "That code is not right" in refused.text
    assert not (await hub.two_factor.state(agent.id)).enabled
    # A code of the right form but from two steps back is not enough either.
    stale = await as_agent.post_form("/console/security/two-factor", {"code": app.code(-2)})
    assert stale.status_code == 400
    assert not (await hub.two_factor.state(agent.id)).enabled

    done = await as_agent.post_form("/console/security/two-factor", {"code": app.code()})
    assert done.status_code == 200
    assert "Two-factor login is on" in done.text
    codes = _CODES.findall(done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert await hub.two_factor.state(agent.id) == TwoFactorState(
        enabled=True, recovery_codes_left=10
    )
    on = await as_agent.http.get("/console/security")
    assert "10</strong> of 10 recovery codes left" in on.text
    assert "qr-code" not in on.text


async def test_the_secret_is_stored_sealed_and_the_recovery_codes_hashed(
    hub: Hub, agent: Agent, clock: FakeClock
) -> None:
    app, codes = await turn_on(hub, agent, clock)
    async with hub.db.read() as conn:
        stored = await conn.scalar(sa.select(agent_two_factor.c.secret))
        hashes = list(await conn.scalars(sa.select(agent_recovery_codes.c.code_hash)))
    assert stored.startswith("enc:") and app.totp.secret not in stored
    assert len(hashes) == 10
    plain = {code.replace("-", "") for code in codes}
    assert not plain & set(hashes)


# ---- logging in -----------------------------------------------------------------------


async def test_the_session_opens_only_after_the_right_code(
    hub: Hub, http: httpx.AsyncClient, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    first = await password_step(http, agent.email, next_path="/console/calls")
    assert first.status_code == 303
    assert first.headers["location"] == "/console/login/code"
    assert not await _console_opens(http)

    page = await http.get("/console/login/code")
    assert "Enter your code" in page.text
    wrong = await http.post(
        "/console/login/code", data={"code": "12345x", "csrf_token": csrf_from(page.text)}
    )
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    assert not await _console_opens(http)

    done = await code_step(http, app.next_code())
    assert done.status_code == 303
    assert done.headers["location"] == "/console/calls"  # where the login was going
    home = await http.get("/console/")
    assert home.status_code == 200
    # The wrong code counted as a failed login, and is told once.
    assert "1 failed login attempt since your last login" in home.text


async def test_a_code_of_the_step_before_or_after_is_accepted_but_not_further(
    hub: Hub, live_server: LiveServer, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    clock.advance(10 * 30)
    for steps in (-2, 2, 3):
        async with new_http(live_server) as http:
            await password_step(http, agent.email)
            refused = await code_step(http, app.code(steps))
            assert refused.status_code == 400, steps
            assert not await _console_opens(http)
    for steps in (-1, 1):  # a later step each time: each code counts once
        async with new_http(live_server) as http:
            await log_in_with_code(http, agent.email, app.code(steps))


async def test_a_code_already_used_is_refused(
    hub: Hub, live_server: LiveServer, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    code = app.next_code()
    async with new_http(live_server) as http:
        await log_in_with_code(http, agent.email, code)
    async with new_http(live_server) as thief:
        await password_step(thief, agent.email)
        replayed = await code_step(thief, code)
        assert replayed.status_code == 400
        assert not await _console_opens(thief)
        # Nor a code of an earlier step that is still within the window.
        earlier = await code_step(thief, app.code(-1))
        assert earlier.status_code == 400


async def test_the_set_up_code_cannot_be_used_again_to_log_in(
    hub: Hub, http: httpx.AsyncClient, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)  # confirmed with app.code()
    await password_step(http, agent.email)
    assert (await code_step(http, app.code())).status_code == 400


async def test_a_recovery_code_logs_in_once(
    hub: Hub, live_server: LiveServer, agent: Agent, clock: FakeClock
) -> None:
    _, codes = await turn_on(hub, agent, clock)
    async with new_http(live_server) as http:
        await password_step(http, agent.email)
        page = await http.get("/console/login/code?recovery=1")
        assert "Use a recovery code" in page.text
        # Typed in capitals with spaces in place of dashes, as people do.
        typed = codes[3].upper().replace("-", " ")
        done = await http.post(
            "/console/login/code",
            data={"code": typed, "recovery": "1", "csrf_token": csrf_from(page.text)},
        )
        assert done.status_code == 303
        assert await _console_opens(http)
    assert (await hub.two_factor.state(agent.id)).recovery_codes_left == 9
    async with new_http(live_server) as http:
        await password_step(http, agent.email)
        again = await code_step(http, codes[3])
        assert again.status_code == 400
        assert not await _console_opens(http)


async def test_wrong_codes_count_toward_the_login_limits(
    hub: Hub, http: httpx.AsyncClient, agent: Agent, clock: FakeClock, fast_limits: LoginLimits
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    await password_step(http, agent.email)  # one attempt of the burst
    page = await http.get("/console/login/code")
    statuses = [
        (
            await http.post(
                "/console/login/code", data={"code": "999999", "csrf_token": csrf_from(page.text)}
            )
        ).status_code
        for _ in range(LOGIN_BURST)
    ]
    assert statuses == [400] * (LOGIN_BURST - 1) + [429]
    assert await hub.agents.recent_failed_logins(agent.email) == LOGIN_BURST - 1
    # Past the limit even the right code waits.
    refused = await code_step(http, app.next_code())
    assert refused.status_code == 429
    assert not await _console_opens(http)


async def test_the_second_step_runs_out(
    hub: Hub, http: httpx.AsyncClient, agent: Agent, clock: FakeClock, monkeypatch
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    monkeypatch.setattr(auth, "PENDING_LOGIN_SECONDS", -1)
    await password_step(http, agent.email)
    page = await http.get("/console/login/code")
    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    late = await http.post("/console/login/code", data={"code": app.next_code(), "csrf_token": "x"})
    assert late.status_code in {303, 403}
    assert not await _console_opens(http)


async def test_agents_without_two_factor_log_in_in_one_step(
    http: httpx.AsyncClient, agent: Agent
) -> None:
    await log_in(http, agent.email)


# ---- changing it ----------------------------------------------------------------------


async def test_new_recovery_codes_replace_the_old_ones(
    hub: Hub, live_server: LiveServer, agent: Agent, clock: FakeClock
) -> None:
    app, old = await turn_on(hub, agent, clock)
    async with new_http(live_server) as http:
        console = await log_in_with_code(http, agent.email, app.next_code())
        refused = await console.post_form("/console/security/recovery-codes", {"code": old[0]})
        assert refused.status_code == 400  # a current app code is needed
        made = await console.post_form(
            "/console/security/recovery-codes", {"code": app.next_code()}
        )
        assert made.status_code == 200
        new = _CODES.findall(made.text)
        assert len(new) == 10 and not set(new) & set(old)
    async with new_http(live_server) as http:
        await password_step(http, agent.email)
        assert (await code_step(http, old[1])).status_code == 400
        assert (await code_step(http, new[0])).status_code == 303


async def test_turning_it_off_needs_the_password_and_a_code(
    hub: Hub, live_server: LiveServer, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    async with new_http(live_server) as http:
        console = await log_in_with_code(http, agent.email, app.next_code())
        wrong_password = await console.post_form(
            "/console/security/two-factor/off",
            {"password": "not my password", "code": app.next_code()},
        )
        assert wrong_password.status_code == 400
        assert "password is not right" in wrong_password.text
        wrong_code = await console.post_form(
            "/console/security/two-factor/off", {"password": "correct horse battery", "code": "1"}
        )
        assert wrong_code.status_code == 400
        assert (await hub.two_factor.state(agent.id)).enabled
        off = await console.post_form(
            "/console/security/two-factor/off",
            {"password": "correct horse battery", "code": app.next_code()},
        )
        assert off.status_code == 303
        assert not (await hub.two_factor.state(agent.id)).enabled
    async with new_http(live_server) as http:
        await log_in(http, agent.email)  # one step again


# ---- admins ---------------------------------------------------------------------------


async def test_admins_require_it_only_once_they_use_it(
    hub: Hub, live_server: LiveServer, admin: Agent, clock: FakeClock
) -> None:
    async with new_http(live_server) as http:
        console = await log_in(http, admin.email)
        refused = await console.post_form("/console/team-security/required", {"required": "on"})
        assert refused.status_code == 400
        assert "for yourself first" in refused.text
        bad = await console.post_form("/console/team-security/required", {"required": "yes"})
        assert bad.status_code == 400
    assert not await hub.two_factor.required()


async def test_required_two_factor_is_set_up_before_the_console_opens(
    hub: Hub, live_server: LiveServer, admin: Agent, agent: Agent, clock: FakeClock
) -> None:
    admin_app, _ = await turn_on(hub, admin, clock)
    async with new_http(live_server) as agent_http:
        await log_in(agent_http, agent.email)  # logged in before it is required
        async with new_http(live_server) as http:
            console = await log_in_with_code(http, admin.email, admin_app.next_code())
            done = await console.post_form("/console/team-security/required", {"required": "on"})
            assert done.status_code == 303
            page = await http.get(done.headers["location"])
            assert "Every agent must now use two-factor login" in page.text
            assert await _console_opens(http)  # the admin's own session goes on
        assert await hub.two_factor.required()
        # The agent without two-factor was logged out ...
        assert not await _console_opens(agent_http)

    async with new_http(live_server) as http:
        # ... and after their password is sent to set it up, and nothing else opens.
        first = await password_step(http, agent.email)
        assert first.headers["location"] == "/console/login/two-factor-setup"
        assert not await _console_opens(http)
        assert (await http.get("/console/security")).status_code == 303
        setup = await http.get("/console/login/two-factor-setup")
        assert setup.status_code == 200 and 'class="qr-code"' in setup.text
        secret = re.search(r'data-secret="([A-Z2-7]+)"', setup.text)
        assert secret
        app = Authenticator(secret.group(1), clock)
        csrf = csrf_from(setup.text)
        wrong = await http.post(
            "/console/login/two-factor-setup", data={"code": app.code(3), "csrf_token": csrf}
        )
        assert wrong.status_code == 400
        assert not await _console_opens(http)
        done = await http.post(
            "/console/login/two-factor-setup", data={"code": app.code(), "csrf_token": csrf}
        )
        assert done.status_code == 200
        assert len(_CODES.findall(done.text)) == 10
        assert await _console_opens(http)
        security = await http.get("/console/security")
        assert "Your admins require two-factor login" in security.text
        # While it is required, it cannot be turned off.
        off = await http.post(
            "/console/security/two-factor/off",
            data={
                "password": "correct horse battery",
                "code": app.next_code(),
                "csrf_token": csrf_from(security.text),
            },
        )
        assert off.status_code == 403
        assert (await hub.two_factor.state(agent.id)).enabled


async def test_agents_may_not_change_the_requirement_or_reset_anyone(
    hub: Hub, as_agent: Console, admin: Agent, clock: FakeClock
) -> None:
    await turn_on(hub, admin, clock)
    assert (await as_agent.http.get("/console/team-security")).status_code == 403
    required = await as_agent.post_form("/console/team-security/required", {"required": "on"})
    assert required.status_code == 403
    reset = await as_agent.post_form(f"/console/team-security/{admin.id}/reset", {})
    assert reset.status_code == 403
    assert not await hub.two_factor.required()
    assert (await hub.two_factor.state(admin.id)).enabled


async def test_an_admin_resets_an_agents_two_factor(
    hub: Hub, live_server: LiveServer, as_admin: Console, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    async with new_http(live_server) as agent_http:
        await log_in_with_code(agent_http, agent.email, app.next_code())
        page = await as_admin.http.get("/console/team-security")
        assert f"/console/team-security/{agent.id}/reset" in page.text
        done = await as_admin.post_form(f"/console/team-security/{agent.id}/reset", {})
        assert done.status_code == 303
        assert not (await hub.two_factor.state(agent.id)).enabled
        assert not await _console_opens(agent_http)  # their sessions ended
    missing = await as_admin.post_form("/console/team-security/999999/reset", {})
    assert missing.status_code == 404
    async with new_http(live_server) as http:
        await log_in(http, agent.email)  # not required: one step, and set it up again
        assert 'class="qr-code"' in (await http.get("/console/security")).text


async def test_a_reset_during_the_second_step_sends_the_agent_back_to_the_password(
    hub: Hub, http: httpx.AsyncClient, agent: Agent, clock: FakeClock
) -> None:
    await turn_on(hub, agent, clock)
    await password_step(http, agent.email)
    await hub.two_factor.reset(agent.id)
    page = await http.get("/console/login/code")
    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    assert not await _console_opens(http)


async def test_a_refused_request_for_new_recovery_codes_begins_no_set_up(
    hub, live_server, as_agent, agent
):
    """Asking for new codes without two-factor on is refused and stores nothing
    (the page it shows used to begin a set-up: found by the fuzz suite)."""
    answer = await as_agent.post_form("/console/security/recovery-codes", {"code": "123456"})
    assert answer.status_code == 400 and "Turn two-factor login on first" in answer.text
    assert await hub.two_factor.waiting(agent) is None
