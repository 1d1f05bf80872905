"""Raw MIME over HTTP (`POST /email/inbound/{token}`) against the live app:
what is stored, and every way a request is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.hostile_mail import empty_parts
from channels.email import routes
from hub.core import Hub
from hub.email.inboxes import EmailInbox, EmailInboxConfig
from hub.settings import Settings
from storage.tables import email_messages
from tests.conftest import LiveServer, migrated_settings
from tests.email_helpers import SUPPORT, passing_auth

MAX_BYTES = 64 * 1024
RFC822 = {"Content-Type": "message/rfc822"}


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    """The shared fixture, with a small message size limit to test 413 cheaply."""
    return migrated_settings(tmp_path, migrated_store, HUB_MAIL_MAX_BYTES=str(MAX_BYTES))


@pytest.fixture
async def intake(hub: Hub, live_server: LiveServer) -> AsyncIterator[tuple[EmailInbox, str]]:
    """The support inbox and its intake URL."""
    inbox, token = await hub.email_inboxes.create(
        EmailInboxConfig(name="Support", address=SUPPORT, auto_ack=True)
    )
    yield inbox, f"{live_server.url}/email/inbound/{token}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def raw_message(
    text: str = "My order has not arrived.",
    *,
    subject: str = "Where is my order?",
    message_id: str | None = None,
    sender: str = "alice@customer.test",
) -> tuple[bytes, str]:
    mid = message_id or make_msgid(domain="customer.test").strip("<>")
    raw = (
        f"Authentication-Results: {passing_auth(sender)}\r\n"
        f"From: Alice Doe <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    return raw, mid


async def outgoing(hub: Hub, conversation_id: int):  # type: ignore[no-untyped-def]
    details = (await hub.email.details(conversation_id)).values()
    return [d for d in details if d.direction.value == "out"]


async def received_raw(hub: Hub, conversation_id: int) -> bytes:
    [details] = [
        d for d in (await hub.email.details(conversation_id)).values() if d.direction.value == "in"
    ]
    return (await hub.email.raw(details.id))[1]


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# ---- stored ----------------------------------------------------------------------------


async def test_a_raw_message_is_stored_before_200(hub: Hub, client, intake):
    inbox, url = intake
    raw, _ = raw_message("Parcel is late.")
    response = await client.post(url, content=raw, headers=RFC822)
    assert response.status_code == 200
    body = response.json()
    assert body["stored"] is True and body["outcome"] == "new"
    conversation = await hub.conversations.get(body["ticket"])
    assert conversation.inbox_id == inbox.id
    assert await received_raw(hub, body["ticket"]) == raw  # kept byte for byte


async def test_octet_stream_is_taken_and_a_resend_is_a_duplicate(hub: Hub, client, intake):
    _, url = intake
    raw, _ = raw_message()
    headers = {"Content-Type": "application/octet-stream"}
    first = (await client.post(url, content=raw, headers=headers)).json()
    again = (await client.post(url, content=raw, headers=headers)).json()
    assert first["outcome"] == "new"
    assert again == {"stored": True, "outcome": "duplicate", "ticket": first["ticket"]}


@pytest.mark.parametrize("field", ["email", "message"])
async def test_a_form_field_holding_the_raw_message_is_stored_byte_for_byte(
    hub: Hub, client, intake, field
):
    _, url = intake
    # 8-bit Latin-1 body: a form decoder that assumed UTF-8 would change it.
    raw, _ = raw_message()
    raw = raw.replace(b"My order", b"Caf\xe9 order")
    response = await client.post(
        url,
        data={"to": SUPPORT, "spam_score": "0.1"},
        files={field: ("message.eml", raw, "message/rfc822")},
    )
    assert response.status_code == 200, response.text
    assert await received_raw(hub, response.json()["ticket"]) == raw


async def test_a_plain_form_field_works_too(client, intake):
    _, url = intake
    raw, _ = raw_message()
    response = await client.post(url, files={"message": (None, raw)})
    assert response.status_code == 200 and response.json()["outcome"] == "new"


async def test_the_envelope_recipient_threads_by_the_reply_address(hub: Hub, client, intake):
    _, url = intake
    first = (await client.post(url, content=raw_message()[0], headers=RFC822)).json()
    reply_address = (await hub.email.thread(first["ticket"]))["reply_address"]
    fresh, _ = raw_message("Written fresh", subject="hello")
    by_header = await client.post(
        url, content=fresh, headers={**RFC822, "X-Envelope-To": f"<{reply_address}>"}
    )
    other, _ = raw_message("Again fresh", subject="hi")
    by_query = await client.post(
        url,
        content=other,
        headers=RFC822,
        params={"envelope_to": f"someone@else.test, {reply_address}"},
    )
    assert by_header.json()["ticket"] == first["ticket"]
    assert by_query.json()["ticket"] == first["ticket"]


async def test_a_null_envelope_sender_gets_no_acknowledgement(hub: Hub, client, intake):
    _, url = intake
    person = (await client.post(url, content=raw_message()[0], headers=RFC822)).json()
    system, _ = raw_message(sender="notices@vendor.test")
    nulled = await client.post(url, content=system, headers={**RFC822, "X-Envelope-From": "<>"})
    assert len(await outgoing(hub, person["ticket"])) == 1  # the acknowledgement
    assert await outgoing(hub, nulled.json()["ticket"]) == []


# ---- refused -----------------------------------------------------------------------------


async def test_an_unknown_token_is_401_and_stores_nothing(hub: Hub, client, live_server, intake):
    raw, _ = raw_message()
    for token in ("wrong-token", "x" * 500):
        response = await client.post(
            f"{live_server.url}/email/inbound/{token}", content=raw, headers=RFC822
        )
        assert response.status_code == 401
        assert error_code(response) == "bad_token"
    async with hub.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(email_messages)) == 0


async def test_guessing_tokens_is_rate_limited(client, live_server, intake):
    url = f"{live_server.url}/email/inbound/guess"
    statuses = [
        (await client.post(url, content=b"x", headers=RFC822)).status_code
        for _ in range(routes.FAILED_AUTH_BURST + 1)
    ]
    assert statuses[:-1] == [401] * routes.FAILED_AUTH_BURST
    assert statuses[-1] == 429


async def test_too_many_messages_for_an_inbox_are_429(
    client, intake, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(routes, "MESSAGE_BURST", 2)
    monkeypatch.setattr(routes, "MESSAGES_PER_SECOND", 0.001)
    _, url = intake
    statuses = [
        (await client.post(url, content=raw_message()[0], headers=RFC822)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_a_declared_oversize_body_is_413_before_it_is_read(client, intake):
    _, url = intake
    response = await client.post(
        url,
        content=b"x" * (MAX_BYTES + routes.FORM_OVERHEAD_BYTES + 1),
        headers=RFC822,
    )
    assert response.status_code == 413 and error_code(response) == "too_large"


async def test_a_streamed_oversize_body_is_413(client, intake):
    _, url = intake

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(40):
            yield b"y" * 4096

    response = await client.post(url, content=chunks(), headers=RFC822)
    assert response.status_code == 413


async def test_a_message_over_the_limit_inside_a_form_is_413(client, intake):
    _, url = intake
    big = raw_message("z" * (MAX_BYTES + 10))[0]
    response = await client.post(url, files={"email": ("m.eml", big, "message/rfc822")})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "headers", "files", "status", "code"),
    [
        (b"", RFC822, None, 400, "empty"),
        (b"\r\n  \r\n", RFC822, None, 400, "empty"),
        (b"From: a@b.test\r\n\r\nhi", {"Content-Type": "application/json"}, None, 415, None),
        (b"From: a@b.test\r\n\r\nhi", {}, None, 415, "unsupported_media_type"),
        (None, None, {"attachment": ("a.txt", b"hi", "text/plain")}, 400, "missing_field"),
        (
            b"--x\r\nbroken",
            {"Content-Type": "multipart/form-data"},
            None,
            400,
            "bad_form",
        ),
    ],
)
async def test_unusable_bodies_are_refused_with_a_json_error(
    client, intake, content, headers, files, status, code
):
    _, url = intake
    response = await client.post(url, content=content, headers=headers, files=files)
    assert response.status_code == status
    assert error_code(response) == (code or "unsupported_media_type")


async def test_a_message_too_complex_to_read_is_422_and_stores_nothing(hub: Hub, client, intake):
    _, url = intake
    response = await client.post(url, content=empty_parts(5_000, to=SUPPORT), headers=RFC822)
    assert response.status_code == 422
    assert error_code(response) == "too_complex"
    assert "MIME parts" in response.json()["error"]["message"]
    async with hub.db.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(email_messages))
        ).scalar_one() == 0


async def test_other_methods_are_405(client, intake):
    _, url = intake
    assert (await client.get(url)).status_code == 405


async def test_a_store_failure_is_503_and_the_retry_is_stored_once(
    hub: Hub, client, intake, monkeypatch: pytest.MonkeyPatch
):
    _, url = intake
    raw, _ = raw_message()
    real_ingest = hub.email.ingest

    async def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(hub.email, "ingest", down)
    failed = await client.post(url, content=raw, headers=RFC822)
    assert failed.status_code == 503 and error_code(failed) == "unavailable"
    assert failed.headers["retry-after"] == str(routes.RETRY_AFTER_SECONDS)

    monkeypatch.setattr(hub.email, "ingest", real_ingest)
    retried = await client.post(url, content=raw, headers=RFC822)
    again = await client.post(url, content=raw, headers=RFC822)
    assert retried.json()["outcome"] == "new" and again.json()["outcome"] == "duplicate"
    assert await received_raw(hub, retried.json()["ticket"]) == raw  # one copy only


def test_access_log_lines_do_not_show_intake_or_cti_tokens():
    import logging

    from hub.composition.app import HIDE_TOKENS_IN_PATHS

    for path in ("/email/inbound/s3cretTOKEN?x=1", "/voice/cti/s3cretTOKEN"):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "POST", path, "1.1", 200),
            None,
        )
        assert HIDE_TOKENS_IN_PATHS.filter(record)
        assert "s3cret" not in record.getMessage()
        assert "POST /" in record.getMessage()
