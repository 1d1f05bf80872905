"""Console pages for calls over real HTTP, and the screen pop over the console websocket."""

from __future__ import annotations

import re

import httpx
import pytest

from hub.models import Direction, Kind
from hub.voice.models import CallEvent, CallFilter, Outcome, Step
from tests.console_client import Console, page_data, visitor_says
from tests.test_console_socket import ready_socket, receive, receive_until

PROVIDER_TOKEN = "provider-secret-abcdef-9876"


@pytest.fixture
async def line(hub):  # type: ignore[no-untyped-def]
    created, _ = await hub.phone_lines.create(
        "Support line", ["+44 20 7946 0000"], "GB", provider_auth_token=PROVIDER_TOKEN
    )
    return created


def ring(call_id: str, number: str = "07700 900123", **fields) -> CallEvent:  # type: ignore[no-untyped-def]
    return CallEvent(
        step=Step.RING,
        external_id=call_id,
        source="cti",
        direction=Direction.IN,
        from_number=number,
        to_number="020 7946 0000",
        **fields,
    )


def hangup(call_id: str, cause: str) -> CallEvent:
    return CallEvent(step=Step.HANGUP, external_id=call_id, source="cti", cause=cause)


# ---- the call log ---------------------------------------------------------------------


async def test_the_call_log_needs_a_login(http: httpx.AsyncClient) -> None:
    response = await http.get("/console/calls")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    assert (await http.get("/console/api/calls")).status_code == 401


async def test_the_call_back_queue_lists_missed_calls_until_called_back(
    hub, line, as_agent: Console
) -> None:
    await hub.calls.record(line, ring("missed"))
    await hub.calls.record(line, hangup("missed", "noAnswer"))
    await hub.calls.record(line, ring("fine", "07700 900999"))
    await hub.calls.record(line, hangup("fine", "normalClearing"))

    page = await as_agent.http.get("/console/calls?view=callback")
    assert page.status_code == 200
    # The rows the log draws (static/calls.js; drawn in tests/test_browser_calls.py).
    [row] = page_data(page.text)["calls"]["rows"]
    assert row["contact"]["display_name"] == "+44 7700 900123"
    listed = (await as_agent.http.get("/console/api/calls?view=callback")).json()
    assert [c["number"] for c in listed["calls"]] == ["+447700900123"] and listed["waiting"] == 1

    call_id = listed["calls"][0]["id"]
    refused = await as_agent.http.post(f"/console/calls/{call_id}/called-back")
    assert refused.status_code == 403  # no CSRF token
    done = await as_agent.post_json(f"/console/calls/{call_id}/called-back", {})
    assert done.status_code == 200 and done.json()["call"]["call_back"] is False
    assert (await as_agent.http.get("/console/api/calls?view=callback")).json()["calls"] == []


async def test_filters_by_direction_outcome_and_agent(hub, line, as_agent: Console) -> None:
    await hub.calls.record(line, ring("a"))
    await hub.calls.record(
        line, CallEvent(step=Step.ANSWER, external_id="a", source="cti", answered_by="Sam")
    )
    await hub.calls.record(line, hangup("a", "normalClearing"))
    await hub.calls.record(line, ring("b", "07700 900555"))
    await hub.calls.record(line, hangup("b", "busy"))

    async def numbers(query: str) -> list[str]:
        data = (await as_agent.http.get(f"/console/api/calls?{query}")).json()
        return [c["number"] for c in data["calls"]]

    assert await numbers("outcome=busy") == ["+447700900555"]
    assert await numbers("agent=Sam") == ["+447700900123"]
    assert await numbers("direction=out") == []
    assert len(await numbers("direction=in&outcome=bogus")) == 2  # unknown values are ignored


async def test_logging_a_call_by_hand_adds_the_call_and_its_note(hub, line, as_agent: Console):
    form = {
        "direction": "out",
        "number": "(07700) 900-123",
        "start": "2026-11-20T09:30",
        "tz_offset": "-60",  # the agent's browser is at UTC+1
        "duration": "4:30",
        "outcome": "answered",
        "notes": "Agreed a refund <b>today</b>",
        "client_id": "form-abc",
    }
    response = await as_agent.post_form("/console/calls", form)
    assert response.status_code == 303
    again = await as_agent.post_form("/console/calls", form)  # a double submit
    assert again.status_code == 303
    [call] = await hub.calls.list()
    assert call.to_number == "+447700900123" and call.duration_seconds == 270
    assert call.started_at.isoformat() == "2026-11-20T08:30:00+00:00"
    messages = await hub.conversations.messages(call.conversation_id)
    assert [m.kind for m in messages] == [Kind.CALL, Kind.NOTE]
    page = await as_agent.http.get(response.headers["location"])
    assert "<b>today" not in page.text  # only inert JSON data: the thread draws it as text
    texts = [m["text"] for m in page_data(page.text)["open"]["messages"]]
    assert "Note on the call: Agreed a refund <b>today</b>" in texts


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("number", "not a number", "number"),
        ("duration", "ten minutes", "duration"),
        ("start", "yesterday", "start"),
        ("outcome", "great", "outcome"),
        ("direction", "up", "direction"),
    ],
)
async def test_a_bad_hand_logged_call_is_refused_and_stores_nothing(
    hub, line, as_agent: Console, field, value, message
):
    form = {
        "direction": "in",
        "number": "07700 900123",
        "start": "2026-11-20T09:30",
        "duration": "60",
        "outcome": "answered",
        field: value,
    }
    response = await as_agent.post_json("/console/calls", form)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert await hub.calls.list() == []


# ---- contacts ---------------------------------------------------------------------------


async def test_the_contact_page_shows_calls_and_names_an_unknown_caller(
    hub, line, as_agent: Console
):
    recorded = await hub.calls.record(line, ring("c1"))
    contact_id = recorded.call.contact_id
    page = await as_agent.http.get(f"/console/contacts/{contact_id}")
    assert page.status_code == 200 and "Inbound call" in page.text
    response = await as_agent.post_form(
        f"/console/contacts/{contact_id}", {"name": "<script>alert(1)</script>", "email": ""}
    )
    assert response.status_code == 303
    page = await as_agent.http.get(f"/console/contacts/{contact_id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text


async def test_a_second_number_on_a_contact_brings_their_calls_together(
    hub, line, as_agent: Console
):
    first = await hub.calls.record(line, ring("home", "07700 900123"))
    contact_id = first.call.contact_id
    added = await as_agent.post_form(
        f"/console/contacts/{contact_id}/phones", {"phone": "020 7946 0555"}
    )
    assert added.status_code == 303
    second = await hub.calls.record(line, ring("work", "+44 (0)20-7946-0555"))
    assert second.call.contact_id == contact_id
    taken = await as_agent.post_json(
        f"/console/contacts/{second.call.contact_id + 0}/phones", {"phone": "garbage"}
    )
    assert taken.status_code == 400
    other = await hub.calls.record(line, ring("other", "07700 900777"))
    clash = await as_agent.post_json(
        f"/console/contacts/{other.call.contact_id}/phones", {"phone": "07700 900123"}
    )
    assert clash.status_code == 400 and "belongs to another contact" in clash.text


# ---- phone lines (admin) --------------------------------------------------------------------


async def test_phone_lines_are_for_admins_only(as_agent: Console, line) -> None:
    assert (await as_agent.http.get("/console/phone-lines")).status_code == 403
    response = await as_agent.post_form(
        "/console/phone-lines", {"name": "Mine", "numbers": "+1 415 555 0100", "region": "US"}
    )
    assert response.status_code == 403
    rotate = await as_agent.post_form(f"/console/phone-lines/{line.inbox_id}/rotate", {})
    assert rotate.status_code == 403


async def test_a_new_line_shows_its_webhook_url_once_and_never_its_provider_token(
    hub, live_server, as_admin: Console
) -> None:
    response = await as_admin.post_form(
        "/console/phone-lines",
        {
            "name": "Sales",
            "numbers": "020 7946 0999",
            "region": "gb",
            "provider_token": "provider-token-secret-42",
        },
    )
    assert response.status_code == 303
    first = await as_admin.http.get("/console/phone-lines")
    urls = re.findall(r"http://[^<\"]+/voice/cti/([A-Za-z0-9_-]+)", first.text)
    assert len(urls) == 1
    second = await as_admin.http.get("/console/phone-lines")
    assert urls[0] not in second.text
    for page in (first, second):
        assert "provider-token-secret-42" not in page.text
        assert "…t-42" in page.text  # only the last four characters

    async with httpx.AsyncClient(base_url=live_server.url) as phone_system:
        event = {"event": "newCall", "direction": "in", "from": "+447700900123", "callId": "1"}
        assert (await phone_system.post(f"/voice/cti/{urls[0]}", json=event)).status_code == 200
        [line] = await hub.phone_lines.list()
        rotated = await as_admin.post_form(f"/console/phone-lines/{line.inbox_id}/rotate", {})
        assert rotated.status_code == 303
        old = await phone_system.post(f"/voice/cti/{urls[0]}", json=event)
        assert old.status_code == 401


async def test_phone_lines_stay_off_the_website_inboxes_page(line, website, as_admin: Console):
    page = await as_admin.http.get("/console/inboxes")
    assert website.name in page.text and line.name not in page.text


async def test_a_bad_phone_line_form_says_what_is_wrong(hub, as_admin: Console) -> None:
    response = await as_admin.post_form(
        "/console/phone-lines", {"name": "X", "numbers": "call me", "region": "GB"}
    )
    assert response.status_code == 400
    assert "not a phone number" in response.text
    assert await hub.phone_lines.list() == []


# ---- screen pop over the console websocket --------------------------------------------------


async def test_a_new_callers_first_call_brings_its_conversation_to_the_console_first(
    hub, live_server, line, as_agent: Console
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        await hub.calls.record(line, ring("first-1", "07700 900555"))
        seen: list[dict] = []
        while not seen or seen[-1]["type"] != "call":
            seen.append(await receive(ws))
    call = seen[-1]["call"]
    opened = [f for f in seen if f["type"] == "conversation"]
    # The console learns of the conversation before the call that points at it.
    assert [f["conversation"]["id"] for f in opened] == [call["conversation_id"]]


async def test_the_screen_pop_reaches_only_the_agent_rung_and_clears_everywhere(
    hub, live_server, line, agent, admin, as_agent: Console, as_admin: Console
) -> None:
    async with (
        ready_socket(live_server, as_agent) as sam,
        ready_socket(live_server, as_admin) as ada,
    ):
        await hub.calls.record(line, ring("pop-1", agents=("Sam Agent",)))
        pop = await receive_until(sam, "call_ringing")
        assert pop["known"] is False
        assert pop["call"]["number_display"] == "+44 7700 900123"
        assert pop["contact"]["phone"] == "+447700900123"
        # Ada was not rung: she sees the call in the log but gets no pop.
        ringing = await receive_until(ada, "call")
        assert ringing["call"]["state"] == "ringing"

        await hub.calls.record(
            line, CallEvent(step=Step.ANSWER, external_id="pop-1", source="cti", answered_by="Sam")
        )
        for ws in (sam, ada):
            update = await receive_until(ws, "call")
            assert update["call"]["id"] == pop["call"]["id"]
            assert update["call"]["state"] == "answered"
        await hub.calls.record(line, ring("pop-2", "07700 900123"))  # nobody named: all online
        for ws in (sam, ada):
            second = await receive_until(ws, "call_ringing")
            assert second["known"] is True and second["recent_calls"][0]["id"] == pop["call"]["id"]


async def test_a_missed_call_reaches_the_consoles_as_a_reopened_call_back_conversation(
    hub, live_server, line, as_agent: Console
) -> None:
    async with ready_socket(live_server, as_agent) as ws:
        await hub.calls.record(line, ring("m"))
        await hub.calls.record(line, hangup("m", "cancel"))
        message = await receive_until(ws, "message")
        assert message["message"]["kind"] == "call"
        assert message["message"]["text"] == "Missed call from +44 7700 900123"
        conversation = await receive_until(ws, "conversation")
        assert conversation["conversation"]["status"] == "open"
        assert conversation["conversation"]["call_back"] is True
    [call] = await hub.calls.list(CallFilter(call_back=True))
    assert call.outcome is Outcome.MISSED


async def test_a_phone_conversation_shows_no_web_visitor_sections(
    hub, line, website, as_agent: Console
) -> None:
    await hub.calls.record(line, ring("c1"))
    await hub.calls.record(line, hangup("c1", "noAnswer"))
    [call] = (await as_agent.http.get("/console/api/calls")).json()["calls"]
    phone_page = await as_agent.http.get(f"/console/conversations/{call['conversation_id']}")
    assert phone_page.status_code == 200
    assert 'id="side-visit"' not in phone_page.text and ">Visitor</h3>" not in phone_page.text
    _, posted = await visitor_says(hub, website, "hello from the web")
    chat_page = await as_agent.http.get(f"/console/conversations/{posted.conversation.id}")
    assert 'id="side-visit"' in chat_page.text and ">Visitor</h3>" in chat_page.text
