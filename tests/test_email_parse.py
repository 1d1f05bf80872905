"""The MIME parser: the hand-written corpus field by field, limits, failure paths,
and property tests that it never raises and always keeps the raw bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email import bodies as bodies_module
from channels.email import parse as parse_module
from channels.email.parse import make_safe_filename, parse_email
from hub.email.models import Address, InboundEmail
from tests.email_fixtures import corpus_files, corpus_message

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def parse(name: str, **limits: int) -> InboundEmail:
    return parse_email(corpus_message(name), **limits)


def message(headers: str, body: str = "Hello.\n") -> bytes:
    """A small message: `headers` as lines (From/To added when absent), then the body."""
    if "from:" not in headers.lower():
        headers = "From: a@example.com\n" + headers
    return (headers.strip("\n") + "\n\n" + body).encode()


def multipart(parts: list[tuple[str, str]], subtype: str = "mixed", head: str = "") -> bytes:
    """A multipart message of (part headers, part body) pairs."""
    lines = [head.strip("\n"), f'Content-Type: multipart/{subtype}; boundary="BB"', ""]
    for part_headers, body in parts:
        lines += ["--BB", part_headers.strip("\n"), "", body]
    lines.append("--BB--")
    return message("\n".join(line for line in lines[:2] if line), "\n".join(lines[3:]) + "\n")


# --- The corpus ---------------------------------------------------------------------


def test_the_corpus_is_there_and_every_file_parses_cleanly():
    files = corpus_files()
    assert len(files) >= 23
    for path in files:
        email = parse_email(path.read_bytes())
        assert email.raw == path.read_bytes()
        assert email.parse_error is None, path.name
        assert email.sender is not None, path.name
        assert email.text.strip(), path.name


REPLIES = {
    "gmail_reply": "Could you check with the",
    "outlook_reply": "Please send a corrected one.",
    "outlook_original_message": "please book the engineer for Tuesday",
    "apple_mail_reply": "the new link worked",
    "thunderbird_reply": "the refund has not shown up",
}


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_replies_fold_the_quoted_earlier_message_away(name):
    email = parse(name)
    assert "QUOTED-EARLIER-TEXT" in email.text
    assert "QUOTED-EARLIER-TEXT" not in email.visible_text
    assert REPLIES[name] in email.visible_text
    assert "wrote:" not in email.visible_text
    assert "Original Message" not in email.visible_text
    assert "Sent:" not in email.visible_text


def test_gmail_reply_prefers_plain_text_and_keeps_sanitized_html():
    email = parse("gmail_reply")
    assert email.text.startswith("Hi,\n\nThe tracking page still says")
    assert "\r" not in email.text
    assert email.html is not None and "gmail_quote" not in email.html  # classes dropped
    assert "label created" in email.html
    assert email.visible_text.endswith("Maria")


def test_gmail_reply_ids_lose_brackets_and_references_skip_junk():
    email = parse("gmail_reply")
    assert email.message_id == "CAF=aB3xYz+1q@mail.gmail.example"
    assert email.in_reply_to == ("out-7@hub.example",)
    assert email.references == ("ticket-41@hub.example", "out-7@hub.example")


def test_gmail_reply_addresses_are_lower_case_with_decoded_names():
    email = parse("gmail_reply")
    assert email.sender == Address("maria.lopez@gmail.example", "Maria Lopez")
    assert email.to == (Address("support+acme@hub.example", "Acme Support"),)
    assert email.delivered_to == ("support+acme@hub.example",)
    assert email.date == datetime(2024, 6, 3, 8, 12, 30, tzinfo=UTC)


def test_outlook_reply_decodes_base64_utf8_and_drops_the_invalid_cc():
    email = parse("outlook_reply")
    assert "Viele Grüße," in email.visible_text
    assert email.cc == (Address("anna.weber@contoso.example", "Weber, Anna"),)
    assert email.to == (Address("support@hub.example"),)  # name equal to the address
    assert email.sender == Address("jonas.schmidt@contoso.example", "Schmidt, Jonas")


def test_outlook_html_loses_its_style_sheet_and_classes():
    html = parse("outlook_reply").html
    assert html is not None
    assert "MsoNormal" not in html and "<style" not in html and "style=" not in html
    assert "19%, not 16%" in html


def test_windows_1252_body_decodes_smart_punctuation():
    text = parse("outlook_original_message").visible_text
    assert "That price is fine – please book" in text  # noqa: RUF001 - the characters under test
    assert "The € amount" in text and "“Yes”" in text


def test_apple_mail_reply_decodes_quoted_printable():
    email = parse("apple_mail_reply")
    assert email.visible_text == "Thanks, the new link worked and I’m back in.\n\nTom"  # noqa: RUF001 - the characters under test


def test_thunderbird_signature_and_quote_are_folded():
    email = parse("thunderbird_reply")
    assert "SIGNATURE-LINE" in email.text
    assert "SIGNATURE-LINE" not in email.visible_text
    assert email.visible_text.endswith("Petra")
    assert email.references == ("out-30@hub.example", "out-31@hub.example")


def test_plain_new_message_keeps_everything_visible():
    email = parse("plain_new")
    assert email.visible_text == email.text
    assert "- item one\n- item two" in email.visible_text
    assert email.html is None and email.attachments == () and not email.automatic


def test_plain_new_message_addresses():
    email = parse("plain_new")
    assert email.sender == Address("lena@example.org", "Lena Fischer")
    assert email.reply_to == Address("lena.fischer@work.example", "Lena (work)")
    assert [a.email for a in email.to] == ["support@hub.example", "sales@hub.example"]
    assert email.cc == (Address("boss@example.org", "Boss, The"),)  # "<>" and "@@" dropped
    assert email.delivered_to == ("support@hub.example", "support+sales@hub.example")
    assert email.participants[0] == "lena@example.org"


def test_a_date_without_zone_is_taken_as_utc():
    assert parse("plain_new").date == datetime(2024, 6, 8, 14, 30, tzinfo=UTC)


def test_a_date_keeps_its_offset():
    date = parse("latin1_body").date
    assert date is not None and date.utcoffset() == timedelta(hours=2)
    assert date == datetime(2024, 6, 10, 7, 45, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(
    ("name", "subject", "sender_name", "body"),
    [
        ("latin1_body", "Grüße aus München - Grüße aus München", "Jürgen Müller", "Viele Grüße"),
        ("koi8r", "Привет от клиента", "Иван", "Привет!\n\nУ меня не работает вход"),  # noqa: RUF001 - the characters under test
        ("iso2022jp", "日本語のお問い合わせ", "山田", "日本語で問い合わせます"),
        ("raw_8bit_header", "Fråga om leverans – snälla svara", "Zoë Ångström", "När kommer"),  # noqa: RUF001 - the characters under test
    ],
)
def test_charsets_decode_to_the_right_characters(name, subject, sender_name, body):
    email = parse(name)
    assert email.subject == subject
    assert email.sender is not None and email.sender.name == sender_name
    assert body in email.text


def test_unknown_and_wrong_charset_labels_fall_back():
    email = parse("wrong_charset")
    assert "UTF-8 bytes: Grüße, naïve café." in email.text  # label unknown: UTF-8
    assert "windows-1252: Straße." in email.text  # "us-ascii", not UTF-8: cp1252
    assert "\ufffd" not in email.text


def test_malformed_encoded_words_are_kept_literally_and_good_ones_decoded():
    email = parse("wrong_charset")
    assert email.subject.startswith("Café order ")
    assert "=?utf-8?B?invalid base64?=" in email.subject
    assert email.subject.endswith("abc ✓")
    assert email.sender is not None and email.sender.email == "ana@example.net"


def test_an_unreadable_date_is_none():
    assert parse("wrong_charset").date is None
    assert parse("no_content_type").date is None


def test_a_missing_closing_boundary_keeps_text_and_the_partial_attachment():
    email = parse("missing_boundary_end")
    assert email.text == "The attachment below might be cut off."
    (pdf,) = email.attachments
    assert pdf.filename == "report.pdf" and pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF-1.4")


def test_bad_base64_still_gives_text_and_the_attachment():
    email = parse("bad_base64")
    assert email.text.startswith("Hello, this body is base64")
    (photo,) = email.attachments
    assert photo.filename == "photo.png" and photo.data.startswith(b"\x89PNG")


def test_no_content_type_is_plain_text_with_8bit_utf8():
    email = parse("no_content_type")
    assert email.text == "Status report for machine 7: temperature 71°C, all good."
    assert email.sender == Address("legacy-system@factory.example")


def test_attachments_names_types_sizes_and_inline_image():
    email = parse("attachments")
    image, pdf, text_file, archive = email.attachments
    assert (image.content_type, image.inline, image.content_id) == (
        "image/png",
        True,
        "hinge-photo@lee.example",
    )
    assert image.filename == "attachment-1.png" and len(image.data) == 70
    assert (pdf.filename, pdf.content_type, len(pdf.data), pdf.inline) == (
        "invoice.pdf",
        "application/pdf",
        125,
        False,
    )
    assert text_file.filename == "Angebot für Sie.txt"  # RFC 2231, path removed
    assert text_file.data == b"hello\n"
    assert archive.filename == "attachment-4.zip" and archive.content_type == "application/zip"


def test_attachments_html_keeps_the_cid_image_and_text_comes_from_plain():
    email = parse("attachments")
    assert email.html is not None and 'src="cid:hinge-photo@lee.example"' in email.html
    assert email.text == "The hinge is broken, see the photo. Invoice attached."


def test_calendar_invite_is_an_ics_attachment_and_a_line_of_text():
    email = parse("calendar_invite")
    (invite,) = email.attachments
    assert invite.filename == "invite.ics" and invite.content_type == "text/calendar"
    assert b"SUMMARY:Onboarding call" in invite.data
    assert email.text == "Calendar invitation: Onboarding call (20240617T150000Z)"


def test_out_of_office_is_automatic_but_not_a_bounce():
    email = parse("out_of_office")
    assert email.automatic and email.bounce is None
    assert email.headers["auto-submitted"] == "auto-replied"
    assert email.in_reply_to == ("out-55@hub.example",)


def test_list_mail_is_automatic():
    email = parse("list_mail")
    assert email.automatic and email.bounce is None
    assert email.headers["list-id"] == "Platform announcements <announce.platform.example>"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Autorespond: whatever",
        "X-Auto-Response-Suppress: OOF",
        "List-Unsubscribe: <mailto:u@x.example>",
        "List-Post: NO",
        # vendor vacation markers, one per family
        "X-Apple-Action: vacation",
        "X-Autogenerated: Reply",
        "X-POST-MessageClass: 9; Autoresponder",
        "X-FC-MachineGenerated: true",
        "X-Autoresponse: 1",
        "X-Vacation: yes",
        "X-Mail-Autoreply: yes",
        "X-Autoreply-From: a@example.com",
        "X-Precedence: auto_reply",
        # Auto-Submitted variants
        "Auto-Submitted: Auto-Replied (vacation)",
        "Auto-Submitted: auto-notified; owner-email=a@example.com",
        "X-Auto-Submitted: auto-generated",
        "Auto-Submitted: nope",
    ],
)
def test_automatic_headers(header):
    assert parse_email(message(header)).automatic


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "Auto-Submitted: No (sent by a person)",
        "Auto-Submitted: no; reason=test",
        "X-Apple-Action: forward",
        "Precedence: first-class",
        "",
    ],
)
def test_people_are_not_automatic(header):
    assert not parse_email(message(header or "Subject: hi")).automatic


def test_delivery_status_bounce():
    email = parse("dsn_bounce")
    assert email.automatic
    assert email.bounce is not None
    assert email.bounce.original_message_id == "out-1@hub.example"
    assert email.bounce.recipient == "nobody@customer.example"
    assert email.bounce.status == "5.1.1"
    assert email.bounce.diagnostic == (
        "550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown"
    )
    assert "could not\nbe delivered" in email.text


def test_delivery_status_bounce_with_the_whole_original_as_eml():
    original = "From: support@hub.example\nMessage-ID: <out-9@hub.example>\n\nHello\n"
    raw = multipart(
        [
            ("Content-Type: text/plain", "Delivery failed."),
            (
                "Content-Type: message/delivery-status",
                "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; x@y.example\n"
                "Action: failed\nStatus: 5.2.2\n",
            ),
            ("Content-Type: message/rfc822", original),
        ],
        subtype="report; report-type=delivery-status",
        head="From: MAILER-DAEMON@mx.example",
    )
    email = parse_email(raw)
    assert email.bounce is not None
    assert (email.bounce.original_message_id, email.bounce.status) == ("out-9@hub.example", "5.2.2")
    assert email.bounce.recipient == "x@y.example" and email.bounce.diagnostic is None
    (eml,) = email.attachments
    assert eml.filename == "original.eml" and b"Message-ID: <out-9@hub.example>" in eml.data
    assert "Hello" not in email.text


def test_read_receipt_report_is_automatic_but_not_a_bounce():
    raw = multipart(
        [
            ("Content-Type: text/plain", "Read."),
            (
                "Content-Type: message/disposition-notification",
                "Disposition: manual-action/MDN-sent-manually; displayed",
            ),
        ],
        subtype="report; report-type=disposition-notification",
    )
    email = parse_email(raw)
    assert email.automatic and email.bounce is None


def test_mailer_daemon_plain_bounce():
    email = parse("mailer_daemon_bounce")
    assert email.automatic
    assert email.bounce is not None
    assert email.bounce.original_message_id == "out-2@hub.example"
    assert email.bounce.recipient == "gone@oldhost.example"
    assert email.bounce.status == "5.1.1"
    assert email.bounce.diagnostic == "550 5.1.1 No such user here"


def test_mailer_daemon_without_failure_subject_is_not_a_bounce():
    raw = message("From: MAILER-DAEMON@mx.example\nSubject: Delivery report: all fine")
    assert parse_email(raw).bounce is None


def test_a_person_writing_about_undelivered_mail_is_not_a_bounce():
    email = parse_email(message("Subject: Undelivered Mail Returned to Sender"))
    assert email.bounce is None and not email.automatic


def test_forwarded_message_is_inline_text_and_its_attachment_is_kept():
    email = parse("forwarded")
    assert email.text.startswith("Can you take care of this customer? NEW-FORWARD-NOTE")
    assert "---------- Forwarded message ----------\nFrom: Customer Carl" in email.text
    assert "Subject: Complaint about delivery" in email.text
    assert "FORWARDED-BODY-TEXT Grüße, Carl" in email.text
    assert "FORWARDED-BODY-TEXT" in email.visible_text  # forwarded words are not a quote
    (photo,) = email.attachments
    assert photo.filename == "wet-parcel.png"
    assert email.message_id == "fwd-1@shop-owner.example"  # the outer message's own


def test_tnef_is_kept_as_an_attachment():
    email = parse("tnef_winmail")
    (tnef,) = email.attachments
    assert (tnef.filename, tnef.content_type, len(tnef.data)) == (
        "winmail.dat",
        "application/ms-tnef",
        46,
    )
    assert email.text == "Please see the contract draft attached."


def test_hostile_html_is_sanitized():
    html = parse("html_only_hostile").html
    assert html is not None
    lowered = html.lower()
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onclick",
        "javascript:",
        "<iframe",
        "<form",
        "<object",
        "<svg",
        "<style",
        "style=",
        "alert(",
        "title-should-not-show",
    ):
        assert bad not in lowered, bad
    assert 'href="https://phish.example/login" rel="noopener noreferrer"' in html
    assert 'href="mailto:help@phish.example"' in html
    assert 'src="https://tracker.phish.example/pixel.gif"' in html  # blocked later by CSP
    assert 'src="data:image/png;base64,' in html
    assert "<table>" in html and "<li>First &amp; foremost</li>" in html


def test_html_only_message_gets_readable_text():
    email = parse("html_only_hostile")
    assert "Dear customer,\nplease click here or log in or write to help." in email.text
    assert "- First & foremost\n- Second" in email.text
    assert "Cell A\tCell B" in email.text
    assert "alert" not in email.text and "TITLE-SHOULD-NOT-SHOW" not in email.text


def test_display_headers_are_the_present_few():
    headers = parse("gmail_reply").headers
    assert set(headers) == {"from", "to", "date", "subject"}
    assert headers["subject"] == "Re: [#41] Order 1001 never arrived"


# --- Smaller behaviours -------------------------------------------------------------


def test_html_only_reply_folds_blockquotes():
    body = (
        "<div>New answer here.</div><div class=gmail_quote>On Mon, 3 Jun 2024 at 10:00, "
        "A &lt;a@b.example&gt; wrote:<blockquote>old text</blockquote></div>"
    )
    email = parse_email(message("Content-Type: text/html; charset=utf-8", body))
    assert email.visible_text == "New answer here."
    assert "> old text" in email.text


def test_interleaved_answers_keep_their_quotes():
    body = "> Which size?\nLarge.\n> Which colour?\nBlue.\n"
    assert parse_email(message("Subject: x", body)).visible_text == body.strip()


def test_a_message_that_is_only_a_quote_stays_visible():
    body = "> just a quote\n> nothing else\n"
    assert parse_email(message("Subject: x", body)).visible_text == body.strip()


def test_inline_forward_in_plain_text_is_not_folded():
    body = (
        "See below.\n\n---------- Forwarded message ---------\nFrom: C <c@x.example>\n"
        "Date: Mon, 3 Jun 2024\nSubject: Broken\nTo: me@x.example\n\nIt broke.\n"
    )
    assert "It broke." in parse_email(message("Subject: Fwd: Broken", body)).visible_text


def test_outlook_underscore_separator_is_folded_too():
    body = (
        "Fine by me.\n\n________________________________\nFrom: Acme <s@hub.example>\n"
        "Sent: Monday, June 3, 2024 4:45 PM\nTo: K <k@x.example>\nSubject: Hi\n\nOld.\n"
    )
    assert parse_email(message("Subject: RE: Hi", body)).visible_text == "Fine by me."


def test_mobile_footer_is_folded():
    body = "Yes please.\n\nSent from my iPhone\n"
    assert parse_email(message("Subject: x", body)).visible_text == "Yes please."


def test_text_normalizes_line_ends_and_drops_control_characters():
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nline\x00one\r\ntwo\x07\tthree\rfour\x1b\r\n"
    assert parse_email(raw).text == "lineone\ntwo\tthree\nfour"


def test_references_are_capped_keeping_root_and_latest():
    ids = " ".join(f"<r{i}@x.example>" for i in range(150))
    refs = parse_email(message(f"References: {ids}")).references
    assert len(refs) == 100
    assert refs[0] == "r0@x.example" and refs[1] == "r51@x.example" and refs[-1] == "r149@x.example"


def test_overlong_message_ids_are_dropped():
    long_id = "x" * 251 + "@x.example"
    email = parse_email(message(f"Message-ID: <{long_id}>\nReferences: <{long_id}> <ok@x>"))
    assert email.message_id is None and email.references == ("ok@x",)


def test_message_id_without_brackets_is_still_read():
    assert parse_email(message("Message-ID: bare-id@x.example")).message_id == "bare-id@x.example"


def test_text_is_capped():
    email = parse_email(message("Subject: big", "word " * 100_000))
    assert len(email.text) <= parse_module.MAX_TEXT_CHARS
    assert len(email.visible_text) <= parse_module.MAX_TEXT_CHARS


def test_html_over_the_limit_is_dropped_and_text_kept():
    body = "<p>" + "big html " * 150_000 + "</p>"
    email = parse_email(message("Content-Type: text/html", body))
    assert email.html is None
    assert email.text.startswith("big html big html")
    assert "html (too large)" in email.headers["x-hub-dropped"]


def _attachment(name: str, size: int) -> tuple[str, str]:
    data = base64.encodebytes(b"\x00" * size).decode()
    return (
        "Content-Type: application/octet-stream\n"
        f'Content-Disposition: attachment; filename="{name}"\n'
        "Content-Transfer-Encoding: base64",
        data,
    )


def test_attachments_over_the_caps_are_dropped_and_noted():
    raw = multipart(
        [
            ("Content-Type: text/plain", "files"),
            _attachment("a.bin", 600),
            _attachment("b.bin", 3000),
            _attachment("c.bin", 700),
            _attachment("d.bin", 100),
        ],
    )
    email = parse_email(raw, max_attachment_bytes=1000, max_total_attachment_bytes=1250)
    assert [(a.filename, len(a.data)) for a in email.attachments] == [
        ("a.bin", 600),
        ("d.bin", 100),
    ]
    assert email.headers["x-hub-dropped"] == "b.bin (too large), c.bin (total limit)"
    assert email.parse_error is None


def test_too_deep_nesting_is_cut_not_fatal():
    depth = 60
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    tail = "".join(f"\n--b{i}--" for i in reversed(range(depth)))
    raw = (
        "From: a@example.com\nSubject: deep\n"
        + head
        + "Content-Type: text/plain\n\ndeep text"
        + tail
    ).encode()
    email = parse_email(raw)
    assert email.raw == raw and email.subject == "deep"
    assert (
        email.headers["x-hub-dropped"] == "parts beyond the limit (too many or too deeply nested)"
    )


def test_a_chain_of_forwarded_messages_is_cut_at_the_depth_limit():
    inner = "From: z@x.example\nSubject: innermost\n\ninnermost text\n"
    for level in range(80):
        inner = f"From: f{level}@x.example\nContent-Type: message/rfc822\n\n{inner}"
    email = parse_email(("Subject: chain\n" + inner).encode())
    assert email.parse_error is None and email.subject == "chain"
    forwards = email.text.count("---------- Forwarded message ----------")
    assert forwards <= bodies_module.MAX_DEPTH + 1
    assert "parts beyond the limit" in email.headers["x-hub-dropped"]


def test_too_many_parts_are_noted_once():
    raw = multipart([("Content-Type: text/plain", f"p{i}") for i in range(1100)])
    email = parse_email(raw)
    assert email.text.startswith("p0\n\np1") and "p998" in email.text and "p999" not in email.text
    assert (
        email.headers["x-hub-dropped"] == "parts beyond the limit (too many or too deeply nested)"
    )


def test_a_parser_crash_falls_back_to_subject_and_raw_text(monkeypatch):
    def explode(self, data, headersonly=False):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(parse_module.BytesParser, "parsebytes", explode)
    raw = b"Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody \xff text"
    email = parse_email(raw)
    assert email.raw is raw
    assert email.parse_error == "unreadable message: RuntimeError: boom second line"
    assert email.subject == "Grüße"
    assert email.text == email.visible_text
    assert email.text.startswith("Subject: =?utf-8?Q?") and "body \ufffd text" in email.text


def test_one_bad_part_does_not_cost_the_others(monkeypatch):
    original = bodies_module._calendar_line

    def broken(data: bytes) -> str:
        raise ValueError("bad ics")

    monkeypatch.setattr(bodies_module, "_calendar_line", broken)
    email = parse(
        "calendar_invite",
    )
    monkeypatch.setattr(bodies_module, "_calendar_line", original)
    assert email.parse_error is not None and "bad ics" in email.parse_error
    assert email.subject.startswith("Invitation: Onboarding call")
    assert email.sender is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe",
        b"\r\n\r\n",
        b"Subject",
        b"From: <>\n\n",
        b"\n" * 100,
        b"Content-Type: multipart/mixed\n\n--",
    ],
)
def test_degenerate_input_gives_an_empty_message(raw):
    email = parse_email(raw)
    assert email.raw == raw and email.sender is None


@pytest.mark.parametrize("charset", ['"utf\x00-8"', "*=utf-8''x", "x-klingon"])
def test_8bit_parts_under_strange_charset_labels_are_read(charset):
    part = (
        f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit",
        "Grüße",
    )
    email = parse_email(multipart([part, ("Content-Type: text/plain", "second")]))
    assert email.parse_error is None
    assert email.text == "Grüße\n\nsecond"


def test_non_bytes_input_is_accepted():
    email = parse_email(bytearray(b"Subject: hi\n\nbody"))  # type: ignore[arg-type]
    assert email.subject == "hi" and email.raw == b"Subject: hi\n\nbody"


@pytest.mark.parametrize(
    ("name", "content_type", "index", "expected"),
    [
        ("report.pdf", "application/pdf", 1, "report.pdf"),
        ("../../etc/passwd", "text/plain", 1, "passwd"),
        ("C:\\Users\\x\\evil.exe", "application/octet-stream", 1, "evil.exe"),
        ("..hidden", "text/plain", 2, "hidden"),
        ("a\x00b\x1fc\n.txt", "text/plain", 1, "abc.txt"),
        (None, "image/png", 3, "attachment-3.png"),
        ("", "text/calendar", 4, "attachment-4.ics"),
        ("...", "application/x-unknown-thing", 5, "attachment-5.bin"),
        ("/", "application/pdf", 6, "attachment-6.pdf"),
    ],
)
def test_make_safe_filename(name, content_type, index, expected):
    assert make_safe_filename(name, content_type, index) == expected


def test_make_safe_filename_caps_length_and_keeps_the_extension():
    name = make_safe_filename("x" * 500 + ".docx", "application/octet-stream", 1)
    assert len(name) == 200 and name.endswith(".docx")


# --- Properties: never raises, always keeps the raw bytes --------------------------


def _check(raw: bytes) -> None:
    email = parse_email(raw)
    assert email.raw == raw
    assert isinstance(email.text, str) and isinstance(email.visible_text, str)
    assert len(email.text) <= parse_module.MAX_TEXT_CHARS
    assert email.parse_error is None or "\n" not in email.parse_error
    for attachment in email.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert not attachment.filename.startswith(".") and 0 < len(attachment.filename) <= 200
    for value in email.headers.values():
        assert len(value) <= 500


@PROPERTY_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw):
    _check(raw)


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from([path.read_bytes() for path in corpus_files()])))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"--",
                        b"=?",
                        b"?=",
                        b"\x00",
                        b"\xff",
                        b"<",
                        b">",
                        b"\n\n",
                        b"boundary=",
                        b"Content-Type: multipart/mixed\n",
                        b"=\n",
                        b";",
                    ]
                )
                | st.binary(max_size=20)
            )
        elif raw:
            del raw[at : at + draw(st.integers(1, 50))]
    return bytes(raw)


@PROPERTY_SETTINGS
@given(mutated_corpus())
def test_mutated_corpus_messages_never_raise(raw):
    _check(raw)


_TYPES = [
    "text/plain",
    "text/html",
    "text/calendar",
    "image/png",
    "application/pdf",
    "application/ms-tnef",
    "message/rfc822",
    "message/delivery-status",
    "text/rfc822-headers",
    "application/x-what",
    "bogus",
]
_CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "koi8-r",
    "iso-2022-jp",
    "x-nope",
    "rot13",
    "zlib",
    "utf-16",
    "unicode_escape",
    "",
]
_ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "junk"]
_HEADER_TEXT = st.lists(
    st.sampled_from([*"aZ09 <>@.,;:\"'()=?_-\\/\t", "=?utf-8?B?", "=?x?Q?", "ü", "\n ", "\udcff"]),
    max_size=16,
).map("".join)


@st.composite
def leaf(draw: st.DrawFn) -> str:
    content_type = draw(st.sampled_from(_TYPES))
    lines = [f"Content-Type: {content_type}; charset={draw(st.sampled_from(_CHARSETS))}"]
    if draw(st.booleans()):
        lines.append(f"Content-Transfer-Encoding: {draw(st.sampled_from(_ENCODINGS))}")
    if draw(st.booleans()):
        disposition = draw(st.sampled_from(["attachment", "inline", "weird"]))
        lines.append(f'Content-Disposition: {disposition}; filename="{draw(_HEADER_TEXT)}"')
    if draw(st.booleans()):
        lines.append(f"Content-ID: <{draw(_HEADER_TEXT)}>")
    body = draw(st.text(max_size=80) | st.sampled_from(["aGVsbG8=", "=C3=BC", "From: x@y\n\nhi"]))
    return "\n".join(lines) + "\n\n" + body


def _wrap(children: list[str], subtype: str, boundary: str) -> str:
    inner = "".join(f"--{boundary}\n{child}\n" for child in children)
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n{inner}--{boundary}--'


mime_tree = st.recursive(
    leaf(),
    lambda children: st.builds(
        _wrap,
        st.lists(children, max_size=4),
        st.sampled_from(["mixed", "alternative", "related", "report; report-type=delivery-status"]),
        st.sampled_from(["b1", "b2", "=_x", "a b", ""]),
    ),
    max_leaves=8,
)


@PROPERTY_SETTINGS
@given(
    mime_tree,
    st.dictionaries(
        st.sampled_from(
            [
                "From",
                "To",
                "Cc",
                "Reply-To",
                "Subject",
                "Date",
                "Message-ID",
                "References",
                "In-Reply-To",
                "Auto-Submitted",
                "Delivered-To",
            ]
        ),
        _HEADER_TEXT,
        max_size=6,
    ),
    st.sampled_from(["\n", "\r\n"]),
)
def test_random_mime_trees_never_raise(tree, headers, newline):
    head = "".join(f"{name}: {value}\n" for name, value in headers.items())
    text = (head + "MIME-Version: 1.0\n" + tree).replace("\n", newline)
    _check(text.encode("utf-8", errors="surrogatepass"))


def test_an_encoded_word_in_the_local_part_is_decoded_not_kept_as_a_placeholder():
    # What Python's own email package writes for a non-ASCII address (RFC 2047 forbids it).
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg?= <=?utf-8?q?j=C3=B6rg?=@beispiel.test>\r\n"
        b"To: support@shop.test\r\nSubject: x\r\n\r\nhallo\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.sender == Address("jörg@beispiel.test", "Jörg")


def test_a_part_the_html_shows_by_cid_is_inline_whatever_its_disposition():
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = "a@customer.test"
    mail.set_content("see the label")
    mail.add_alternative('<p><img src="cid:label@x"></p>', subtype="html")
    # Python's add_related with a filename writes Content-Disposition: attachment.
    mail.get_payload()[1].add_related(
        b"PNG", maintype="image", subtype="png", cid="<label@x>", filename="label.png"
    )
    mail.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="r.pdf")
    parsed = parse_email(mail.as_bytes())
    assert [(a.filename, a.inline) for a in parsed.attachments] == [
        ("label.png", True),
        ("r.pdf", False),
    ]


def test_authentication_results_are_kept_top_first():
    email = parse_email(
        message(
            "Authentication-Results: mx.shop.example; dkim=pass\n"
            " header.d=example.com\n"
            "Authentication-Results: relay.example; spf=fail"
        )
    )
    assert email.authentication_results == (
        "mx.shop.example; dkim=pass header.d=example.com",
        "relay.example; spf=fail",
    )
