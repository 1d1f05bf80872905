"""Two-factor login in tests: set it up through the service, and log in in two steps
over HTTP with codes computed by pyotp, on a clock the test moves."""

from __future__ import annotations

import httpx
import pyotp

from hub.core import Hub
from hub.models import Agent
from tests.clock import FakeClock
from tests.console_client import AGENT_PASSWORD, Console, csrf_from

STEP = 30  # pyotp's time step, in seconds


class Authenticator:
    """An agent's authenticator app: the codes of the secret at the hub's (fake) time."""

    def __init__(self, secret: str, clock: FakeClock) -> None:
        self.totp = pyotp.TOTP(secret)
        self.clock = clock

    def code(self, steps: int = 0) -> str:
        """The code of the current time step, or of `steps` steps later (earlier if < 0)."""
        return self.totp.at(self.clock() + steps * STEP)

    def next_code(self) -> str:
        """A fresh code: the clock moves on one step first (a code counts only once)."""
        self.clock.advance(STEP)
        return self.code()


async def turn_on(hub: Hub, agent: Agent, clock: FakeClock) -> tuple[Authenticator, list[str]]:
    """Two-factor on for `agent`, as the Security page does; the app and recovery codes."""
    enrollment = await hub.two_factor.begin(agent)
    app = Authenticator(enrollment.secret, clock)
    return app, await hub.two_factor.confirm(agent, app.code())


async def password_step(
    http: httpx.AsyncClient, email: str, password: str = AGENT_PASSWORD, next_path: str = ""
) -> httpx.Response:
    page = await http.get("/console/login")
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.text)}
    if next_path:
        data["next"] = next_path
    return await http.post("/console/login", data=data)


async def code_step(http: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await http.get("/console/login/code")
    assert page.status_code == 200, page.text
    return await http.post(
        "/console/login/code", data={"code": code, "csrf_token": csrf_from(page.text)}
    )


async def log_in_with_code(http: httpx.AsyncClient, email: str, code: str) -> Console:
    first = await password_step(http, email)
    assert first.status_code == 303 and first.headers["location"] == "/console/login/code"
    second = await code_step(http, code)
    assert second.status_code == 303, second.text
    home = await http.get("/console/")
    assert home.status_code == 200
    return Console(http, csrf_from(home.text))
