"""The console's email pages over real HTTP: email inboxes (admin), reading stored mail
(CSP, downloads, cid images), retrying a failed send, replying with attachments."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from hub.core import Hub
from hub.email.inboxes import EmailInbox
from hub.email.models import Attachment, OutboxState
from hub.models import Agent
from storage.tables import email_attachments, messages
from tests.console_client import Console, page_data
from tests.email_helpers import SUPPORT, fail_delivery, inbound, make_email_inbox

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HTML = (
    '<p>Hello <b>there</b></p><img src="cid:logo@customer.test">'
    '<img src="https://tracker.example/pixel.gif">'
)


def _form(**overrides: str) -> dict[str, str]:
    fields = {
        "name": "Support",
        "address": "help@shop.test",
        "display_name": "Shop Help",
        "smtp_host": "smtp.shop.test",
        "smtp_port": "587",
        "smtp_tls": "starttls",
        "smtp_user": "help@shop.test",
        "smtp_password": "",
        "smtp_password_env": "",
        "imap_host": "",
        "imap_port": "993",
        "imap_tls": "tls",
        "imap_user": "",
        "imap_password": "",
        "imap_password_env": "",
        "imap_folder": "INBOX",
        "signature": "The shop team",
        "auto_ack_subject": "",
        "auto_ack_template": "",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
async def inbox(hub: Hub) -> EmailInbox:
    return await make_email_inbox(hub)


@pytest.fixture
async def ticket(hub: Hub, inbox: EmailInbox) -> int:
    """An emailed ticket with an HTML body, an inline image and a file."""
    result = await hub.email.ingest(
        inbox,
        inbound(
            "Hello there",
            cc=("bob@customer.test",),
            html=HTML,
            attachments=(
                Attachment(
                    "logo.png", "image/png", PNG, content_id="logo@customer.test", inline=True
                ),
                Attachment("invoice <2024>.html", "text/html", b"<script>alert(1)</script>"),
            ),
        ),
    )
    assert result.conversation_id is not None
    return result.conversation_id


async def _email_id(hub: Hub, conversation_id: int, seq: int = 1) -> int:
    return (await hub.email.details(conversation_id))[seq].id


async def _attachment_ids(hub: Hub, conversation_id: int) -> dict[str, int]:
    details = await hub.email.details(conversation_id)
    return {f["filename"]: f["id"] for d in details.values() for f in d.attachments}


# ---- email inboxes (admin) -------------------------------------------------------------------


async def test_email_inboxes_are_for_admins_only(as_agent: Console, http: httpx.AsyncClient):
    assert (await as_agent.http.get("/console/email-inboxes")).status_code == 403
    assert (await as_agent.http.get("/console/email-inboxes/new")).status_code == 403
    refused = await as_agent.post_form("/console/email-inboxes", _form())
    assert refused.status_code == 403
    anonymous = await http.get("/console/email-inboxes")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/console/login")


async def test_an_agent_cannot_change_or_rotate_an_inbox(
    hub: Hub, inbox: EmailInbox, as_agent: Console
):
    changed = await as_agent.post_form(f"/console/email-inboxes/{inbox.id}", _form())
    rotated = await as_agent.post_form(f"/console/email-inboxes/{inbox.id}/rotate", {})
    assert (changed.status_code, rotated.status_code) == (403, 403)
    assert (await hub.email_inboxes.get(inbox.id)).address == SUPPORT


async def test_creating_an_inbox_shows_its_intake_url_once_and_never_the_password(
    hub: Hub, as_admin: Console
):
    created = await as_admin.post_form(
        "/console/email-inboxes", _form(smtp_password="s3cret-Passw0rd", auto_ack="1")
    )
    assert created.status_code == 303, created.text
    [inbox] = await hub.email_inboxes.list()
    assert inbox.address == "help@shop.test"
    assert inbox.smtp.port == 587 and inbox.auto_ack
    assert hub.email_inboxes.password(inbox.smtp) == "s3cret-Passw0rd"

    page = await as_admin.http.get("/console/email-inboxes")
    url = re.search(r"/email/inbound/([A-Za-z0-9_-]{20,})", page.text)
    assert url, "the intake URL with its token is shown after creating"
    assert await hub.email_inboxes.by_intake_token(url.group(1)) is not None
    assert "s3cret-Passw0rd" not in page.text
    assert "stored encrypted" in page.text

    again = await as_admin.http.get("/console/email-inboxes")
    assert url.group(1) not in again.text
    edit = await as_admin.http.get(f"/console/email-inboxes/{inbox.id}")
    assert "s3cret-Passw0rd" not in edit.text and url.group(1) not in edit.text
    assert "stored encrypted" in edit.text


async def test_rotating_shows_a_new_intake_url_once(hub: Hub, inbox: EmailInbox, as_admin: Console):
    rotated = await as_admin.post_form(f"/console/email-inboxes/{inbox.id}/rotate", {})
    assert rotated.status_code == 303
    page = await as_admin.http.get("/console/email-inboxes")
    token = re.search(r"/email/inbound/([A-Za-z0-9_-]{20,})", page.text).group(1)  # type: ignore[union-attr]
    assert (await hub.email_inboxes.by_intake_token(token)).id == inbox.id  # type: ignore[union-attr]
    assert token not in (await as_admin.http.get("/console/email-inboxes")).text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("smtp_port", "70000", "port number"),
        ("smtp_port", "smtp", "port number"),
        ("address", "not-an-address", "Not an email address"),
        ("address", "help+x@shop.test", "must not contain"),
        ("smtp_host", "smtp host", "host name"),
        ("smtp_host", "smtp.shop.test\r\nRCPT TO:<x@evil.test>", "host name"),
        ("imap_folder", "INBOX\r\nA1 DELETE INBOX", "line breaks"),
        ("smtp_password_env", "lower-case", "environment variable"),
        ("smtp_tls", "ssl3", "Choose one"),
    ],
)
async def test_a_bad_field_is_refused_next_to_it_and_nothing_changes(
    hub: Hub, inbox: EmailInbox, as_admin: Console, field: str, value: str, message: str
):
    before = await hub.email_inboxes.get(inbox.id)
    response = await as_admin.post_form(
        f"/console/email-inboxes/{inbox.id}",
        _form(**{field: value}, smtp_password="typed-secret-123"),
    )
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert "typed-secret-123" not in response.text
    assert await hub.email_inboxes.get(inbox.id) == before


async def test_a_bad_new_inbox_creates_nothing(hub: Hub, as_admin: Console):
    response = await as_admin.post_form("/console/email-inboxes", _form(imap_port="0"))
    assert response.status_code == 400
    assert 'id="imap_port-error"' in response.text
    assert await hub.email_inboxes.list() == []


async def test_imap_needs_its_server_when_switched_on(hub: Hub, as_admin: Console):
    response = await as_admin.post_form("/console/email-inboxes", _form(imap_enabled="1"))
    assert response.status_code == 400
    assert 'id="imap_host-error"' in response.text
    assert await hub.email_inboxes.list() == []


async def test_editing_keeps_the_stored_password_when_left_empty(
    hub: Hub, inbox: EmailInbox, as_admin: Console
):
    await as_admin.post_form(f"/console/email-inboxes/{inbox.id}", _form(smtp_password="first-pw"))
    saved = await as_admin.post_form(
        f"/console/email-inboxes/{inbox.id}", _form(name="Renamed", smtp_port="2525")
    )
    assert saved.status_code == 303
    changed = await hub.email_inboxes.get(inbox.id)
    assert (changed.name, changed.smtp.port) == ("Renamed", 2525)
    assert hub.email_inboxes.password(changed.smtp) == "first-pw"
    env = await as_admin.post_form(
        f"/console/email-inboxes/{inbox.id}", _form(smtp_password_env="SHOP_SMTP_PASSWORD")
    )
    assert env.status_code == 303
    page = await as_admin.http.get(f"/console/email-inboxes/{inbox.id}")
    assert "from $SHOP_SMTP_PASSWORD" in page.text
    assert 'name="smtp_password_remove"' in page.text
    removed = await as_admin.post_form(
        f"/console/email-inboxes/{inbox.id}", _form(smtp_password_remove="1")
    )
    assert removed.status_code == 303
    assert (await hub.email_inboxes.get(inbox.id)).smtp.password_ref is None
    page = await as_admin.http.get(f"/console/email-inboxes/{inbox.id}")
    assert 'name="smtp_password_remove"' not in page.text  # nothing left to remove


async def test_imap_state_shows_last_check_and_error(
    hub: Hub, inbox: EmailInbox, as_admin: Console
):
    await hub.email_inboxes.record_imap_error(inbox.id, "LOGIN failed: wrong password")
    page = await as_admin.http.get(f"/console/email-inboxes/{inbox.id}")
    assert "LOGIN failed: wrong password" in page.text
    assert "Last checked" in page.text


async def test_posts_without_csrf_or_from_another_site_are_refused(
    hub: Hub, inbox: EmailInbox, as_admin: Console
):
    no_csrf = await as_admin.http.post("/console/email-inboxes", data=_form())
    assert no_csrf.status_code == 403
    cross = await as_admin.http.post(
        f"/console/email-inboxes/{inbox.id}/rotate",
        data={"csrf_token": as_admin.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert [i.id for i in await hub.email_inboxes.list()] == [inbox.id]


async def test_a_website_continues_its_chats_by_email(
    hub: Hub, inbox: EmailInbox, website, as_admin: Console, as_agent: Console
):
    page = await as_admin.http.get(f"/console/inboxes/{website.id}")
    assert "Continue chats by email from" in page.text
    assert (
        await as_agent.post_form(
            f"/console/inboxes/{website.id}/continue-by-email", {"email_inbox_id": str(inbox.id)}
        )
    ).status_code == 403
    chosen = await as_admin.post_form(
        f"/console/inboxes/{website.id}/continue-by-email", {"email_inbox_id": str(inbox.id)}
    )
    assert chosen.status_code == 303
    assert (await hub.inboxes.get(website.id)).email_inbox_id == inbox.id  # type: ignore[union-attr]
    bad = await as_admin.post_form(
        f"/console/inboxes/{website.id}/continue-by-email", {"email_inbox_id": str(website.id)}
    )
    assert bad.status_code == 400
    none = await as_admin.post_form(
        f"/console/inboxes/{website.id}/continue-by-email", {"email_inbox_id": ""}
    )
    assert none.status_code == 303
    assert (await hub.inboxes.get(website.id)).email_inbox_id is None  # type: ignore[union-attr]


# ---- reading stored mail ---------------------------------------------------------------------


async def test_an_email_ticket_shows_its_subject_addresses_and_files(
    hub: Hub, ticket: int, as_agent: Console
):
    page = await as_agent.http.get(f"/console/conversations/{ticket}")
    assert page.status_code == 200
    text = page.text
    assert "Where is my order?" in text
    assert "bob@customer.test" in text
    assert re.search(r"support\+[a-z0-9]+@shop\.test", text)
    assert "Reply by email to" in text
    assert 'enctype="multipart/form-data"' in text
    # The files the thread lists (static/email.js draws them), names made safe.
    [details] = page_data(text)["open"]["email"]["details"].values()
    names = {f["filename"] for f in details["attachments"]}
    assert "invoice _2024_.html" in names or "invoice <2024>.html" in names
    listing = await as_agent.http.get("/console/api/conversations")
    [row] = listing.json()["conversations"]
    assert (row["channel"], row["subject"]) == ("email", "Where is my order?")


async def test_the_html_route_has_its_own_csp_and_blocks_remote_images(
    hub: Hub, ticket: int, as_agent: Console
):
    email_id = await _email_id(hub, ticket)
    logo = (await _attachment_ids(hub, ticket))["logo.png"]
    response = await as_agent.http.get(f"/console/emails/{email_id}/html")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    # Opened directly rather than in the console's frame, it is still an opaque origin.
    assert "sandbox allow-popups" in csp and "allow-scripts" not in csp
    assert "allow-same-origin" not in csp
    img_src = re.search(r"img-src ([^;]+)", csp).group(1)  # type: ignore[union-attr]
    assert "https:" not in img_src.split() and "http:" not in img_src.split()
    assert img_src.split()[0] == "data:" and img_src.endswith("/console/attachments/")
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["referrer-policy"] == "no-referrer"
    # Inline images travel inside the page: the sandboxed frame has an opaque origin
    # and gets no session cookie for the attachment route.
    assert 'src="data:image/png;base64,' in response.text
    assert f"/console/attachments/{logo}" not in response.text
    assert "cid:" not in response.text

    remote = await as_agent.http.get(f"/console/emails/{email_id}/html?images=1")
    img_src = re.search(r"img-src ([^;]+)", remote.headers["content-security-policy"]).group(1)  # type: ignore[union-attr]
    assert {"https:", "http:", "data:"} <= set(img_src.split())


async def test_attachments_are_downloads_that_cannot_run(hub: Hub, ticket: int, as_agent: Console):
    files = await _attachment_ids(hub, ticket)
    [html_name] = [name for name in files if name.startswith("invoice")]
    page = await as_agent.http.get(f"/console/attachments/{files[html_name]}")
    assert page.status_code == 200
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["x-content-type-options"] == "nosniff"
    disposition = page.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" in disposition
    assert "<" not in disposition and "sandbox" in page.headers["content-security-policy"]

    image = await as_agent.http.get(f"/console/attachments/{files['logo.png']}")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("attachment;")
    assert image.content == PNG


async def test_a_non_ascii_file_name_is_given_per_rfc_5987(hub: Hub, inbox, as_agent: Console):
    result = await hub.email.ingest(
        inbox, inbound(attachments=(Attachment("Überweisung €.pdf", "application/pdf", b"%PDF"),))
    )
    [file_id] = (await _attachment_ids(hub, result.conversation_id)).values()  # type: ignore[arg-type]
    response = await as_agent.http.get(f"/console/attachments/{file_id}")
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''%C3%9Cberweisung%20%E2%82%AC.pdf" in disposition
    assert 'filename="Uberweisung .pdf"' in disposition


async def test_the_raw_message_downloads_as_eml(hub: Hub, ticket: int, as_agent: Console):
    email_id = await _email_id(hub, ticket)
    response = await as_agent.http.get(f"/console/emails/{email_id}/raw")
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert f"message-{email_id}.eml" in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert b"Subject: Where is my order?" in response.content


async def test_show_original_gives_the_full_text(hub: Hub, inbox, as_agent: Console):
    result = await hub.email.ingest(
        inbox,
        inbound("Thanks!\n\nOn Monday Bob wrote:\n> old text", visible_text="Thanks!"),
    )
    page = await as_agent.http.get(f"/console/conversations/{result.conversation_id}")
    assert "old text" not in page.text
    email_id = await _email_id(hub, result.conversation_id)  # type: ignore[arg-type]
    original = await as_agent.http.get(f"/console/api/emails/{email_id}")
    assert "> old text" in original.json()["text"]
    assert original.json()["has_html"] is False


async def test_an_unreadable_message_offers_its_raw_download(hub: Hub, inbox, as_agent: Console):
    result = await hub.email.ingest(inbox, inbound("garbage", parse_error="broken MIME boundary"))
    page = await as_agent.http.get(f"/console/conversations/{result.conversation_id}")
    email_id = await _email_id(hub, result.conversation_id)  # type: ignore[arg-type]
    # The thread says why and links the original (drawn: tests/test_browser_console_pages.py).
    [details] = page_data(page.text)["open"]["email"]["details"].values()
    assert (details["id"], details["parse_error"]) == (email_id, "broken MIME boundary")
    raw = await as_agent.http.get(f"/console/emails/{email_id}/raw")
    assert raw.status_code == 200 and b"garbage" in raw.content


@pytest.mark.parametrize(
    "path",
    [
        "/console/emails/{email}/html",
        "/console/emails/{email}/raw",
        "/console/api/emails/{email}",
        "/console/attachments/{file}",
        "/console/conversations/{ticket}/emails",
    ],
)
async def test_stored_mail_needs_a_login(hub: Hub, ticket: int, http: httpx.AsyncClient, path: str):
    url = path.format(
        email=await _email_id(hub, ticket),
        file=(await _attachment_ids(hub, ticket))["logo.png"],
        ticket=ticket,
    )
    response = await http.get(url)
    assert response.status_code in (303, 401)
    assert b"PNG" not in response.content and b"Hello" not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/console/emails/999999/html",
        "/console/emails/999999/raw",
        "/console/api/emails/999999",
        "/console/attachments/999999",
        "/console/conversations/999999/emails",
        # Beyond any key the store holds (SQLite refuses ints past 2**63).
        "/console/emails/99999999999999999999/html",
        "/console/emails/99999999999999999999/raw",
        "/console/api/emails/99999999999999999999",
        "/console/attachments/99999999999999999999",
        "/console/conversations/99999999999999999999",
        "/console/contacts/2147483648",
    ],
)
async def test_unknown_ids_are_404(as_agent: Console, path: str):
    assert (await as_agent.http.get(path)).status_code == 404


async def test_an_email_without_html_has_no_html_page(hub: Hub, inbox, as_agent: Console):
    result = await hub.email.ingest(inbox, inbound("plain only"))
    email_id = await _email_id(hub, result.conversation_id)  # type: ignore[arg-type]
    assert (await as_agent.http.get(f"/console/emails/{email_id}/html")).status_code == 404


# ---- delivery state and retry --------------------------------------------------------------


def _state_of(html: str, seq: int) -> tuple[str, str | None]:
    details = page_data(html)["open"]["email"]["details"][str(seq)]
    return details["state"], details["error"]


async def test_a_failed_email_shows_why_and_can_be_retried(
    hub: Hub, ticket: int, agent: Agent, as_agent: Console
):
    posted = await hub.conversations.reply(agent, ticket, "We are on it.")
    seq = posted.message.seq
    page = await as_agent.http.get(f"/console/conversations/{ticket}")
    assert _state_of(page.text, seq) == ("queued", None)
    await fail_delivery(hub, ticket, seq, "550 5.1.1 mailbox unknown")
    page = await as_agent.http.get(f"/console/conversations/{ticket}")
    # The thread shows why, with a Retry (drawn: tests/test_browser_email.py).
    assert _state_of(page.text, seq) == ("failed", "550 5.1.1 mailbox unknown")

    no_csrf = await as_agent.http.post(f"/console/conversations/{ticket}/messages/{seq}/retry")
    assert no_csrf.status_code == 403
    assert (await hub.email.details(ticket))[seq].state is OutboxState.FAILED

    retried = await as_agent.post_json(f"/console/conversations/{ticket}/messages/{seq}/retry", {})
    assert retried.status_code == 200
    assert retried.json()["email"]["state"] == "queued"
    again = await as_agent.post_json(f"/console/conversations/{ticket}/messages/{seq}/retry", {})
    assert again.status_code == 409
    missing = await as_agent.post_json(f"/console/conversations/{ticket}/messages/1/retry", {})
    assert missing.status_code == 404
    nowhere = await as_agent.post_json("/console/conversations/999999/messages/1/retry", {})
    assert nowhere.status_code == 404


# ---- replying with attachments ----------------------------------------------------------------


def _upload(console: Console, conversation_id: int, files, text: str = "See attached."):  # type: ignore[no-untyped-def]
    return console.http.post(
        f"/console/conversations/{conversation_id}/messages",
        data={"text": text, "mode": "reply", "client_id": "c-upload-1"},
        files=files,
        headers={"X-CSRF-Token": console.csrf, "Accept": "application/json"},
    )


async def _stored_counts(hub: Hub) -> tuple[int, int]:
    async with hub.db.read() as conn:
        return (
            await conn.scalar(sa.select(sa.func.count()).select_from(messages)),
            await conn.scalar(sa.select(sa.func.count()).select_from(email_attachments)),
        )


async def test_a_reply_with_attachments_is_queued_with_safe_names(
    hub: Hub, ticket: int, as_agent: Console
):
    response = await _upload(
        as_agent,
        ticket,
        [
            ("files", ("C:\\temp\\re*port:1.txt", b"hello file", "text/plain")),
            ("files", ("photo.png", PNG, "image/png")),
        ],
    )
    assert response.status_code == 201, response.text
    seq = response.json()["message"]["seq"]
    details = (await hub.email.details(ticket))[seq]
    assert details.state is OutboxState.QUEUED
    assert [(f["filename"], f["content_type"]) for f in details.attachments] == [
        ("report1.txt", "text/plain"),
        ("photo.png", "image/png"),
    ]
    raw = (await hub.email.raw(details.id))[1]
    assert b"report1.txt" in raw and b"photo.png" in raw


async def test_a_plain_form_reply_with_a_file_works_without_javascript(
    hub: Hub, ticket: int, as_agent: Console
):
    response = await as_agent.http.post(
        f"/console/conversations/{ticket}/messages",
        data={"text": "Form upload", "mode": "reply", "csrf_token": as_agent.csrf},
        files=[("files", ("a.txt", b"abc", "text/plain"))],
    )
    assert response.status_code == 303
    [out] = [d for d in (await hub.email.details(ticket)).values() if d.direction.value == "out"]
    assert [f["filename"] for f in out.attachments] == ["a.txt"]


async def test_an_upload_without_csrf_is_refused(hub: Hub, ticket: int, as_agent: Console):
    before = await _stored_counts(hub)
    response = await as_agent.http.post(
        f"/console/conversations/{ticket}/messages",
        data={"text": "x"},
        files=[("files", ("a.txt", b"abc", "text/plain"))],
    )
    assert response.status_code == 403
    assert await _stored_counts(hub) == before


async def test_too_many_files_are_refused_and_nothing_is_stored(
    hub: Hub, ticket: int, as_agent: Console
):
    before = await _stored_counts(hub)
    files = [("files", (f"f{i}.txt", b"x", "text/plain")) for i in range(11)]
    response = await _upload(as_agent, ticket, files)
    assert response.status_code == 400
    assert "at most 10 files" in response.json()["error"]["message"]
    assert await _stored_counts(hub) == before


async def test_a_file_over_10_mb_is_refused_and_nothing_is_stored(
    hub: Hub, ticket: int, as_agent: Console
):
    before = await _stored_counts(hub)
    big = b"x" * (10 * 1024 * 1024 + 1)
    response = await _upload(as_agent, ticket, [("files", ("big.bin", big, "application/zip"))])
    assert response.status_code == 413
    assert "big.bin is larger than 10 MB" in response.json()["error"]["message"]
    assert await _stored_counts(hub) == before


async def test_files_over_25_mb_together_are_refused_and_nothing_is_stored(
    hub: Hub, ticket: int, as_agent: Console
):
    before = await _stored_counts(hub)
    chunk = b"x" * (9 * 1024 * 1024)
    files = [("files", (f"part{i}.bin", chunk, "application/octet-stream")) for i in range(3)]
    response = await _upload(as_agent, ticket, files)
    assert response.status_code == 413
    assert "25 MB together" in response.json()["error"]["message"]
    assert await _stored_counts(hub) == before


async def test_attachments_in_a_chat_are_refused(hub: Hub, website, as_agent: Console):
    from tests.console_client import visitor_says

    _visitor, posted = await visitor_says(hub, website, "Hi from chat")
    before = await _stored_counts(hub)
    response = await _upload(
        as_agent, posted.conversation.id, [("files", ("a.txt", b"abc", "text/plain"))]
    )
    assert response.status_code == 400
    assert "email conversations only" in response.json()["error"]["message"]
    assert await _stored_counts(hub) == before
    chat = await as_agent.post_json(
        f"/console/conversations/{posted.conversation.id}/messages", {"text": "Plain reply"}
    )
    assert chat.status_code == 201
