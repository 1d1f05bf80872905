"""The voice channel over real HTTP on loopback: CTI webhook and provider callbacks."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from channels.voice import provider
from channels.voice.routes import FAILED_AUTH_BURST, MAX_BODY_BYTES
from hub.models import Kind, Role, Status
from hub.voice.models import Outcome, State
from tests.console_client import log_in

PROVIDER_TOKEN = "provider-auth-token-12345"
DOCS = Path(__file__).parent.parent / "docs" / "voice.md"


@pytest.fixture
async def line_and_token(hub):  # type: ignore[no-untyped-def]
    return await hub.phone_lines.create(
        "Support line", ["020 7946 0000"], "GB", provider_auth_token=PROVIDER_TOKEN
    )


@pytest.fixture
async def client(live_server):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        yield http


def cti_path(token: str) -> str:
    return f"/voice/cti/{token}"


async def test_a_cti_call_replayed_with_duplicates_is_one_answered_call(
    hub, client, line_and_token
):
    _line, token = line_and_token
    sequence = [
        {
            "event": "newCall",
            "direction": "in",
            "from": "+44 7700 900123",
            "to": "020 7946 0000",
            "callId": "abc",
            "user": ["Sam Agent"],
            "queue": "support",
        },
        {
            "event": "answer",
            "direction": "in",
            "callId": "abc",
            "user": "Sam Agent",
            "from": "+44 7700 900123",
            "to": "020 7946 0000",
        },
        {
            "event": "hangup",
            "direction": "in",
            "callId": "abc",
            "cause": "normalClearing",
            "from": "+44 7700 900123",
            "to": "020 7946 0000",
        },
    ]
    for event in sequence + sequence:  # every event twice
        response = await client.post(cti_path(token), json=event)
        assert response.status_code == 200, response.text
        assert response.json() == {}
    [call] = await hub.calls.list()
    assert (call.state, call.outcome, call.answered_by) == (
        State.ENDED,
        Outcome.ANSWERED,
        "Sam Agent",
    )
    assert call.from_number == "+447700900123" and call.queue == "support"
    messages = await hub.conversations.messages(call.conversation_id)
    assert [m.kind for m in messages] == [Kind.CALL]


async def test_an_outbound_cti_call_records_the_agent_who_placed_it(hub, client, line_and_token):
    _line, token = line_and_token
    call = {"direction": "out", "from": "020 7946 0000", "to": "+44 7700 900123", "callId": "o1"}
    sequence = [
        {"event": "newCall", "user": "Sam Agent", **call},
        {"event": "answer", **call},  # the customer picked up: no agent named
        {"event": "hangup", "cause": "normalClearing", **call},
    ]
    for event in sequence:
        response = await client.post(cti_path(token), json=event)
        assert response.status_code == 200, response.text
    [stored] = await hub.calls.list()
    assert (stored.outcome, stored.answered_by) == (Outcome.ANSWERED, "Sam Agent")
    [item] = await hub.conversations.messages(stored.conversation_id)
    assert item.text.startswith("Call to +44 7700 900123 · answered by Sam Agent")


async def test_form_data_and_disorder_hangup_before_new_call(hub, client, line_and_token):
    _line, token = line_and_token
    hangup = {
        "event": "hangup",
        "callId": "x1",
        "cause": "cancel",
        "direction": "in",
        "from": "07700 900123",
        "to": "02079460000",
    }
    late_new_call = {
        "event": "newCall",
        "callId": "x1",
        "direction": "in",
        "from": "07700 900123",
        "to": "02079460000",
        "user[]": "Sam",
    }
    for fields in (hangup, late_new_call):
        response = await client.post(
            cti_path(token),
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
    [call] = await hub.calls.list()
    assert call.outcome is Outcome.MISSED and call.waiting_for_call_back
    conversation = await hub.conversations.get(call.conversation_id)
    assert conversation.status is Status.OPEN and conversation.call_back


async def test_a_blocked_caller_is_answered_reject_busy(hub, client, line_and_token):
    line, token = line_and_token
    await hub.phone_lines.update(
        line.inbox_id,
        phone_numbers=["020 7946 0000"],
        default_region="GB",
        blocked_numbers=["07700 900666"],
    )
    response = await client.post(
        cti_path(token),
        json={
            "event": "newCall",
            "direction": "in",
            "from": "+447700900666",
            "to": "02079460000",
            "callId": "spam",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"action": "reject", "reason": "busy"}


async def test_a_bad_token_is_401_and_stores_nothing(hub, client, line_and_token):
    response = await client.post(
        cti_path("not-the-token"),
        json={"event": "newCall", "direction": "in", "from": "+447700900123", "callId": "a"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_token"
    assert await hub.calls.list() == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"direction": "in", "callId": "a"}, "event"),
        ({"event": "ring", "callId": "a"}, "event"),
        ({"event": "newCall", "callId": "a"}, "direction"),
        ({"event": "newCall", "direction": "sideways", "callId": "a"}, "direction"),
        ({"event": "answer"}, "callId"),
        ({"event": "hangup", "callId": "a", "cause": "explosion"}, "cause"),
        ({"event": "newCall", "direction": "in", "callId": "a", "from": "drop table"}, "from"),
        ({"event": "newCall", "direction": "in", "callId": "a", "to": 12345}, "to"),
        ({"event": "newCall", "direction": "in", "callId": "a", "user": {"a": 1}}, "user"),
        ({"event": "answer", "callId": "x" * 101}, "callId"),
    ],
)
async def test_a_malformed_event_is_422_naming_the_field(
    hub, client, line_and_token, fields, field
):
    _, token = line_and_token
    response = await client.post(cti_path(token), json=fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert await hub.calls.list() == []


async def test_oversize_and_unreadable_bodies_are_refused(hub, client, line_and_token):
    _, token = line_and_token
    big = {"event": "newCall", "direction": "in", "callId": "a", "pad": "x" * MAX_BODY_BYTES}
    response = await client.post(cti_path(token), json=big)
    assert response.status_code == 413
    response = await client.post(
        cti_path(token), content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    response = await client.post(
        cti_path(token), content=b"<xml/>", headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 415
    assert await hub.calls.list() == []


async def test_guessing_tokens_is_rate_limited_per_address(client, line_and_token):
    statuses = [
        (await client.post(cti_path(f"guess-{n}"), json={})).status_code
        for n in range(FAILED_AUTH_BURST + 1)
    ]
    assert statuses[:-1] == [401] * FAILED_AUTH_BURST and statuses[-1] == 429


# ---- provider status callbacks -----------------------------------------------------------


def provider_url(live_server, line) -> str:  # type: ignore[no-untyped-def]
    return f"{live_server.url}/voice/provider/{line.inbox_id}"


async def post_signed(client, url, fields, token=PROVIDER_TOKEN, signature=None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is None:
        signature = provider.signature(token, url, list(fields.items()))
    if signature:
        headers[provider.SIGNATURE_HEADER] = signature
    return await client.post(url, content=urlencode(fields), headers=headers)


async def test_provider_callbacks_make_one_call_with_its_recording(
    hub, client, live_server, line_and_token
):
    line, _ = line_and_token
    url = provider_url(live_server, line)
    base = {
        "CallSid": "CA123",
        "From": "+447700900123",
        "To": "+442079460000",
        "Direction": "inbound",
        "AccountSid": "AC1",
    }
    for status, extra in [
        ("ringing", {}),
        ("in-progress", {}),
        ("in-progress", {}),  # a retry
        ("completed", {"CallDuration": "42"}),
        ("completed", {"CallDuration": "42", "RecordingUrl": "https://rec.example/RE1"}),
    ]:
        response = await post_signed(client, url, {**base, "CallStatus": status, **extra})
        assert response.status_code == 200, response.text
    [call] = await hub.calls.list()
    assert call.outcome is Outcome.ANSWERED and call.duration_seconds == 42
    assert call.recording_url == "https://rec.example/RE1"


@pytest.mark.parametrize("status", ["busy", "no-answer", "canceled", "failed"])
async def test_provider_unanswered_statuses(hub, client, live_server, line_and_token, status):
    line, _ = line_and_token
    fields = {
        "CallSid": "CA9",
        "From": "+447700900123",
        "To": "+442079460000",
        "Direction": "inbound",
        "CallStatus": status,
    }
    assert (await post_signed(client, provider_url(live_server, line), fields)).status_code == 200
    [call] = await hub.calls.list()
    expected = {"busy": Outcome.BUSY, "failed": Outcome.FAILED}.get(status, Outcome.MISSED)
    assert call.outcome is expected


async def test_unsigned_or_mis_signed_callbacks_are_403(hub, client, live_server, line_and_token):
    line, _ = line_and_token
    url = provider_url(live_server, line)
    fields = {"CallSid": "CA1", "CallStatus": "ringing", "From": "+447700900123"}
    assert (await post_signed(client, url, fields, signature="")).status_code == 403
    assert (await post_signed(client, url, fields, token="wrong")).status_code == 403
    tampered = provider.signature(PROVIDER_TOKEN, url, list(fields.items()))
    response = await post_signed(
        client, url, {**fields, "From": "+447700900999"}, signature=tampered
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"
    other = await post_signed(client, f"{live_server.url}/voice/provider/999", fields)
    assert other.status_code == 403
    assert await hub.calls.list() == []


async def test_a_callback_signed_for_the_public_url_behind_a_proxy_is_accepted(
    hub, client, live_server, line_and_token, settings
):
    line, _ = line_and_token
    path = f"/voice/provider/{line.inbox_id}"
    fields = {"CallSid": "CA7", "CallStatus": "ringing", "From": "+447700900123"}
    signature = provider.signature(PROVIDER_TOKEN, settings.public_url + path, list(fields.items()))
    response = await post_signed(client, live_server.url + path, fields, signature=signature)
    assert response.status_code == 200
    assert len(await hub.calls.list()) == 1


async def test_a_signed_but_malformed_callback_is_422(hub, client, live_server, line_and_token):
    line, _ = line_and_token
    fields = {"CallSid": "CA1", "CallStatus": "exploded"}
    response = await post_signed(client, provider_url(live_server, line), fields)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "CallStatus"


def test_the_signature_matches_the_providers_documented_example():
    # The worked example from the provider's request-validation documentation and SDKs.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert provider.signature("12345", url, list(params.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


# ---- the documentation's examples work -----------------------------------------------


async def test_the_examples_in_docs_voice_md_are_answered_as_documented(client, line_and_token):
    _, token = line_and_token
    text = DOCS.read_text()
    examples = re.findall(
        r"```json request\n(.*?)\n```\n\n```json response (\d+)\n(.*?)\n```", text, re.S
    )
    assert len(examples) >= 4
    import json

    for request, status, response in examples:
        answer = await client.post(cti_path(token), json=json.loads(request))
        assert answer.status_code == int(status), request
        expected = json.loads(response)
        got = answer.json()
        if "error" in expected:
            assert got["error"]["code"] == expected["error"]["code"]
            assert got["error"].get("field") == expected["error"].get("field")
        else:
            assert got == expected


async def test_an_archived_line_refuses_cti_events_with_a_clear_error(
    hub, client, line_and_token, live_server
):
    line, token = line_and_token
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as admin_http:
        await hub.agents.create("boss@example.com", "Boss", "correct horse battery", Role.ADMIN)
        console = await log_in(admin_http, "boss@example.com")
        archived = await console.post_form(f"/console/phone-lines/{line.inbox_id}/archive", {})
        assert archived.status_code == 303
        page = (await admin_http.get("/console/phone-lines")).text
        assert f"/console/phone-lines/{line.inbox_id}/archive" not in page
    response = await client.post(
        cti_path(token),
        json={"event": "newCall", "direction": "in", "from": "+447700900123", "callId": "a"},
    )
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "archived"
    assert "archived" in response.json()["error"]["message"]
    assert await hub.calls.list() == []
