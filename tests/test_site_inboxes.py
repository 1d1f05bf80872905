"""Website inboxes set up without a developer (issue 16): the service's validation, the
console's pages and refusals, "test this site", archiving, and what the widget is told."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from hub.errors import InvalidInput, NotFound
from hub.inboxes.service import clean_origins
from hub.inboxes.site_check import check_site
from hub.inboxes.widget_settings import WidgetSettings, clean_settings
from hub.models import Channel
from tests.console_client import Console
from tests.engines import settings  # noqa: F401 - runs every test on both engines
from tests.widget_client import WidgetClient

ORIGIN = "http://127.0.0.2:1"
FORM = {
    "name": "Corner shop",
    "allowed_origins": f"https://Corner.example\n\n{ORIGIN}\nhttps://corner.example:443",
    "color": "#10B981",
    "position": "bottom-left",
    "greeting": "Hello from the corner!",
    "language": "fr",
    "away_message": "Back at nine.",
    "prechat_name": "required",
    "prechat_email": "optional",
    "prechat_question": "required",
    "question_label": "Order number",
}


# ---- the service -----------------------------------------------------------------------


def test_origins_are_normalized_deduplicated_and_blank_lines_dropped():
    lines = ["https://Shop.example/", "", "https://shop.example:443", "http://localhost:3000"]
    assert clean_origins(lines) == ["http://localhost:3000", "https://shop.example"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["https://ok.example", "ftp://files.example"], "line 2: 'ftp://files.example' is not"),
        (["shop.example"], "line 1: 'shop.example' is not an origin"),
        (["https://ok.example", "", "http://[::1"], "line 3:"),
        (["", "  "], "a website inbox needs at least one allowed origin"),
    ],
)
def test_a_bad_origin_is_refused_naming_its_line(lines, message):
    with pytest.raises(InvalidInput) as refused:
        clean_origins(lines)
    assert refused.value.message.startswith(message)
    assert refused.value.field == "allowed_origins"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"color": "blue"}, "color"),
        ({"color": "#12345"}, "color"),
        ({"color": "#1234567"}, "color"),
        ({"position": "top-left"}, "position"),
        ({"language": "xx"}, "language"),
        ({"prechat": {"name": "always"}}, "prechat_name"),
        ({"prechat": {"question": "required"}}, "question_label"),
        ({"greeting": "x" * 301}, "greeting"),
    ],
)
def test_bad_widget_settings_are_refused_naming_the_field(values, field):
    with pytest.raises(InvalidInput) as refused:
        clean_settings(values)
    assert refused.value.field == field


def test_stored_settings_that_are_missing_or_broken_take_the_defaults():
    assert WidgetSettings.stored(None) == WidgetSettings()
    assert WidgetSettings.stored({"color": "red"}) == WidgetSettings()
    assert WidgetSettings.stored({"position": "bottom-left"}).position == "bottom-left"


async def test_an_update_saves_everything_or_nothing(hub):
    site = await hub.inboxes.create_website("Shop", ["https://shop.example"])
    widget = clean_settings({"color": "#ff0000"})
    with pytest.raises(InvalidInput):
        await hub.inboxes.update_website(site.id, "New name", ["nope"], True, widget)
    assert await hub.inboxes.get(site.id) == site
    saved = await hub.inboxes.update_website(
        site.id, "New name", ["https://new.example"], True, widget
    )
    assert (saved.name, saved.allowed_origins, saved.require_identity) == (
        "New name",
        ("https://new.example",),
        True,
    )
    assert WidgetSettings.stored(saved.widget_settings).color == "#ff0000"


async def test_an_archived_inbox_leaves_the_list_but_stays_readable(hub):
    site = await hub.inboxes.create_website("Shop", ["https://shop.example"])
    archived = await hub.inboxes.archive(site.id, Channel.WEBSITE)
    assert archived.archived
    assert site.id not in [inbox.id for inbox in await hub.inboxes.list()]
    assert (await hub.inboxes.by_site_token(site.site_token)).archived  # type: ignore[union-attr]
    with pytest.raises(NotFound):  # not an email inbox
        await hub.inboxes.archive(site.id, Channel.EMAIL)


async def test_the_demo_origins_follow_the_public_url_and_keep_the_admins_own(hub):
    demo = await hub.inboxes.create_website("Demo", ["http://127.0.0.1:8000"], site_token="demo")
    await hub.inboxes.follow_public_url("demo", ["http://127.0.0.1:8000", "http://localhost:8000"])
    await hub.inboxes.set_allowed_origins(
        demo.id, ["http://127.0.0.1:8000", "http://localhost:8000", "https://mine.example"]
    )
    moved = await hub.inboxes.follow_public_url(
        "demo", ["http://127.0.0.1:9000", "https://hub.example"]
    )
    assert moved is not None
    assert moved.allowed_origins == (
        "http://127.0.0.1:9000",
        "https://hub.example",
        "https://mine.example",
    )
    assert await hub.inboxes.follow_public_url("no-such-site", ["https://x.example"]) is None


# ---- "test this site" ------------------------------------------------------------------


@asynccontextmanager
async def page_server(body: str):  # type: ignore[no-untyped-def]
    async def page(request) -> HTMLResponse:  # type: ignore[no-untyped-def]
        return HTMLResponse(f"<!doctype html><html><body>{body}</body></html>")

    app = Starlette(routes=[Route("/", page)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    import asyncio

    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:8000", "http://10.0.0.7", "http://169.254.169.254", "http://[::1]"]
)
async def test_the_site_check_refuses_private_addresses(origin):
    with pytest.raises(InvalidInput) as refused:
        await check_site(origin, "token")
    assert "private, loopback or link-local" in refused.value.message
    assert "HUB_SITE_CHECK_ALLOW_PRIVATE" in refused.value.message


async def test_the_site_check_finds_the_snippet_when_private_sites_are_allowed():
    snippet = '<script src="http://hub/widget.js" data-site="tok123" async></script>'
    async with page_server(snippet) as with_snippet, page_server("<p>Hi</p>") as without:
        found = await check_site(with_snippet, "tok123", allow_private=True)
        missing = await check_site(without, "tok123", allow_private=True)
    assert (found.answered, found.status, found.snippet_found) == (True, 200, True)
    assert (missing.answered, missing.snippet_found) == (True, False)
    closed = await check_site(with_snippet, "tok123", allow_private=True)  # server gone
    assert not closed.answered and closed.problem


async def test_the_console_check_reports_a_refusal_and_fetches_nothing(
    live_server, as_admin: Console
):
    async with page_server('data-site="x"') as private_site:
        site = await live_server.hub.inboxes.create_website("Shop", [private_site])
        answer = await as_admin.post_json(f"/console/inboxes/{site.id}/check", {})
    assert answer.status_code == 200
    [check] = answer.json()["checks"]
    assert check["refused"] is True and check["answered"] is False
    assert "private" in check["problem"]
    other = await as_admin.post_json(
        f"/console/inboxes/{site.id}/check", {"origin": "https://elsewhere.example"}
    )
    assert other.status_code == 400
    assert "allowed origins" in other.json()["error"]["message"]


# ---- the console -----------------------------------------------------------------------


async def test_an_admin_adds_a_website_and_the_widget_is_told_its_settings(
    live_server, as_admin: Console
):
    created = await as_admin.post_form("/console/inboxes", FORM)
    assert created.status_code == 303
    site_id = int(created.headers["location"].split("/")[3].split("?")[0])
    site = await live_server.hub.inboxes.get(site_id)
    assert site.allowed_origins == (ORIGIN, "https://corner.example")
    page = await as_admin.http.get(f"/console/inboxes/{site_id}")
    assert f"data-site=&#34;{site.site_token}&#34;" in page.text and "Test this site" in page.text
    listed = await as_admin.http.get("/console/inboxes")
    assert "Corner shop" in listed.text
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        welcome = await client.hello()
    assert welcome["settings"] == {
        "color": "#10b981",
        "position": "bottom-left",
        "greeting": "Hello from the corner!",
        "language": "fr",
        "away_message": "Back at nine.",
        "prechat": {
            "name": "required",
            "email": "optional",
            "question": "required",
            "question_label": "Order number",
        },
    }
    assert "archived" not in welcome


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"allowed_origins": "https://ok.example\nnot a site"}, "allowed_origins", "Line 2: "),
        ({"color": "green"}, "color", "Colour must be #rrggbb"),
        ({"name": ""}, "name", "Must not be empty."),
        ({"position": "middle"}, "position", "Must be one of: bottom-right, bottom-left."),
    ],
)
async def test_bad_input_is_refused_with_the_field_named_and_nothing_saved(
    live_server, as_admin: Console, change, field, message
):
    site = await live_server.hub.inboxes.create_website("Shop", ["https://shop.example"])
    as_json = await as_admin.post_json(f"/console/inboxes/{site.id}", {**FORM, **change})
    assert as_json.status_code == 400
    assert as_json.json()["error"]["fields"][field].startswith(message)
    as_form = await as_admin.post_form(f"/console/inboxes/{site.id}", {**FORM, **change})
    assert as_form.status_code == 400
    assert f'id="{field}-error"' in as_form.text
    assert await live_server.hub.inboxes.get(site.id) == site
    assert len(await live_server.hub.inboxes.list()) == 1


async def test_an_agent_or_a_forged_post_changes_nothing(
    live_server, as_admin: Console, as_agent: Console
):
    hub = live_server.hub
    site = await hub.inboxes.create_website("Shop", ["https://shop.example"])
    for path in ("/console/inboxes/new", f"/console/inboxes/{site.id}"):
        assert (await as_agent.http.get(path)).status_code == 403
    for path, body in (
        ("/console/inboxes", FORM),
        (f"/console/inboxes/{site.id}", FORM),
        (f"/console/inboxes/{site.id}/archive", {}),
        (f"/console/inboxes/{site.id}/check", {}),
    ):
        assert (await as_agent.post_form(path, body)).status_code == 403
        forged = await as_admin.http.post(path, data=body)  # no CSRF token
        assert forged.status_code == 403
    assert await hub.inboxes.get(site.id) == site
    assert len(await hub.inboxes.list()) == 1


async def test_an_archived_site_refuses_new_chats_and_keeps_its_history(
    live_server, as_admin: Console
):
    hub = live_server.hub
    site = await hub.inboxes.create_website("Shop", [ORIGIN])
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        welcome = await client.hello()
        assert (await client.say("Before", "c-1"))["type"] == "ack"
    archived = await as_admin.post_form(f"/console/inboxes/{site.id}/archive", {})
    assert archived.status_code == 303
    assert "Shop" not in (await as_admin.http.get("/console/inboxes")).text
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        again = await client.hello(welcome["visitor_token"])
        refused = await client.say("After", "c-2")
    assert again["archived"] is True
    assert [m["text"] for m in again["messages"]] == ["Before"]
    assert refused["type"] == "error" and refused["code"] == "archived"
    assert "no longer takes messages" in refused["message"]
    # The archived site's page still opens; its settings can no longer be saved.
    assert (await as_admin.http.get(f"/console/inboxes/{site.id}")).status_code == 200
    assert (await as_admin.post_json(f"/console/inboxes/{site.id}", FORM)).status_code == 400


async def test_a_socket_opened_before_the_archive_cannot_start_a_chat(live_server):
    hub = live_server.hub
    site = await hub.inboxes.create_website("Shop", [ORIGIN])
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        await client.hello()
        await hub.inboxes.archive(site.id, Channel.WEBSITE)
        refused = await client.say("Hello?", "c-1")
    assert refused["code"] == "archived"


async def test_an_email_inbox_or_a_phone_line_is_not_a_website(live_server, as_admin: Console):
    line, _token = await live_server.hub.phone_lines.create("Line", ["020 7946 0000"], "GB")
    assert (await as_admin.http.get(f"/console/inboxes/{line.inbox_id}")).status_code == 404
    archive = await as_admin.post_form(f"/console/email-inboxes/{line.inbox_id}/archive", {})
    assert archive.status_code == 404
    assert not (await live_server.hub.inboxes.get(line.inbox_id)).archived


async def test_a_required_pre_chat_field_is_held_by_the_hub_for_any_client(live_server):
    """The widget asks first; a client that skips the form is refused, nothing is
    stored, and the same message with the field (or from a known contact) is taken."""
    hub = live_server.hub
    site = await hub.inboxes.create_website("Shop", [ORIGIN])
    widget = clean_settings({"prechat": {"name": "required", "email": "optional"}})
    await hub.inboxes.update_website(site.id, "Shop", [ORIGIN], False, widget)
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        welcome = await client.hello()
        refused = await client.say("Hi", "c-1", contact={"email": "ada@example.com"})
        assert refused["type"] == "error" and refused["code"] == "prechat_required"
        assert "your name" in refused["message"]
        assert await hub.conversations.latest_for_visitor(welcome["visitor_id"]) is None
        taken = await client.say("Hi", "c-2", contact={"name": "Ada"})
        assert taken["type"] == "ack"
    # Known by name now: a later socket needs no form again.
    async with WidgetClient.connect(live_server.ws_url, site.site_token, ORIGIN) as client:
        await client.hello(welcome["visitor_token"])
        assert (await client.say("Me again", "c-3"))["type"] == "ack"
