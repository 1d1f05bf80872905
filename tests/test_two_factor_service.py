"""The two-factor service on both engines (SQLite and PostgreSQL): set-up, codes once
each within the window, recovery codes once each, the requirement and resets."""

from __future__ import annotations

import pyotp
import pytest

from hub.agents.two_factor import TwoFactorState
from hub.core import Hub
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.models import Agent
from tests.clock import FakeClock
from tests.engines import settings  # noqa: F401 - every test on both engines
from tests.two_factor_client import turn_on


@pytest.fixture
def clock(hub: Hub) -> FakeClock:
    fake = FakeClock()
    hub.two_factor.clock = fake
    return fake


async def test_codes_count_once_within_one_step_either_way(
    hub: Hub, agent: Agent, clock: FakeClock
) -> None:
    app, _ = await turn_on(hub, agent, clock)
    assert not await hub.two_factor.check(agent.id, app.code())  # the set-up's
    assert not await hub.two_factor.check(agent.id, app.code(2))  # too far ahead
    assert await hub.two_factor.check(agent.id, app.code(1))
    assert not await hub.two_factor.check(agent.id, app.code(1))  # a replay
    clock.advance(5 * 30)
    assert not await hub.two_factor.check(agent.id, app.code(-2))  # too far behind
    assert await hub.two_factor.check(agent.id, app.code(-1))
    assert await hub.two_factor.check(agent.id, app.code())
    assert not await hub.two_factor.check(agent.id, app.code(-1))  # older than the last


async def test_recovery_codes_work_once_each_and_new_ones_replace_them(
    hub: Hub, agent: Agent, clock: FakeClock
) -> None:
    app, codes = await turn_on(hub, agent, clock)
    assert await hub.two_factor.check(agent.id, codes[0])
    assert not await hub.two_factor.check(agent.id, codes[0])
    assert await hub.two_factor.state(agent.id) == TwoFactorState(True, 9)
    with pytest.raises(InvalidInput):
        await hub.two_factor.new_recovery_codes(agent, codes[1], "127.0.0.1")
    new = await hub.two_factor.new_recovery_codes(agent, app.next_code(), "127.0.0.1")
    assert not await hub.two_factor.check(agent.id, codes[1])
    assert await hub.two_factor.check(agent.id, new[1])


async def test_wrong_codes_are_failed_logins(hub: Hub, agent: Agent, clock: FakeClock) -> None:
    await turn_on(hub, agent, clock)
    for _ in range(3):
        assert not await hub.two_factor.check(agent.id, "000000", address="198.51.100.7")
    assert await hub.agents.recent_failed_logins(agent.email) == 3


async def test_a_set_up_is_confirmed_only_by_its_current_code(
    hub: Hub, agent: Agent, clock: FakeClock
) -> None:
    enrollment = await hub.two_factor.begin(agent)
    assert (await hub.two_factor.begin(agent)).secret == enrollment.secret
    totp = pyotp.TOTP(enrollment.secret)
    with pytest.raises(InvalidInput):
        await hub.two_factor.confirm(agent, totp.at(clock() + 90))
    assert await hub.two_factor.login_step(agent.id) is None
    codes = await hub.two_factor.confirm(agent, totp.at(clock()))
    assert len(codes) == 10
    assert await hub.two_factor.login_step(agent.id) == "code"
    with pytest.raises(InvalidInput):
        await hub.two_factor.begin(agent)  # already on


async def test_the_requirement_and_resets(
    hub: Hub, admin: Agent, agent: Agent, clock: FakeClock
) -> None:
    with pytest.raises(Forbidden):
        await hub.two_factor.set_required(agent, True)
    with pytest.raises(InvalidInput):
        await hub.two_factor.set_required(admin, True)  # not on for the admin yet
    admin_app, _ = await turn_on(hub, admin, clock)
    admin_session = await hub.agents.open_session(admin)
    agent_session = await hub.agents.open_session(agent)
    await hub.two_factor.set_required(admin, True)
    assert await hub.two_factor.required()
    assert await hub.two_factor.login_step(agent.id) == "setup"
    assert await hub.agents.session_agent(agent_session) is None
    assert await hub.agents.session_agent(admin_session) == admin
    with pytest.raises(Forbidden):
        await hub.two_factor.turn_off(admin, admin_app.next_code(), "127.0.0.1")

    await hub.two_factor.reset(admin.id)
    assert await hub.agents.session_agent(admin_session) is None
    assert await hub.two_factor.login_step(admin.id) == "setup"
    with pytest.raises(NotFound):
        await hub.two_factor.reset(999_999)
    await hub.two_factor.set_required(admin, False)
    assert not await hub.two_factor.required()
    assert await hub.two_factor.login_step(agent.id) is None
