"""The first-run checklist on an admin's console home: each step ticked from what
is stored, gone once all four are done, never shown to agents."""

from __future__ import annotations

import re

from hub.core import Hub
from hub.models import Inbox, Role
from tests.console_client import AGENT_PASSWORD, Console
from tests.email_helpers import make_email_inbox


def steps(html: str) -> dict[str, bool]:
    found = re.findall(
        r'<li class="checklist-step( is-done)?">.*?<a href="[^"]+">([^<]+)</a>', html, re.S
    )
    return {title: bool(done) for done, title in found}


async def test_the_checklist_ticks_each_step_and_goes_once_all_are_done(
    hub: Hub, live_server, as_admin: Console
) -> None:
    home = await as_admin.http.get("/console/")
    assert steps(home.text) == {
        "Add your website": False,
        "Connect your email": False,
        "Invite your team": False,
        "Set business hours": False,
    }
    site = await hub.inboxes.create_website("My shop", ["https://my-shop.test"])
    await make_email_inbox(hub)  # no outgoing server yet: not connected
    await hub.agents.create("kim@example.com", "Kim", AGENT_PASSWORD, Role.AGENT)
    home = await as_admin.http.get("/console/")
    assert steps(home.text) == {
        "Add your website": True,
        "Connect your email": False,
        "Invite your team": True,
        "Set business hours": False,
    }
    await make_email_inbox(hub, smtp_port=2525, address="sales@shop.test")
    await hub.business_hours.set(site.id, "Europe/London", {"mon": [["09:00", "17:00"]]})
    home = await as_admin.http.get("/console/")
    assert steps(home.text) == {} and "Set up your hub" not in home.text


async def test_agents_never_see_the_checklist(
    hub: Hub, live_server, website: Inbox, as_agent: Console
) -> None:
    home = await as_agent.http.get("/console/")
    assert home.status_code == 200 and "Set up your hub" not in home.text
