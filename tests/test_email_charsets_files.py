"""Hostile charsets and files in mail: bad bytes, non-MIME binaries, bidi file names."""

# ruff: noqa: RUF001 - the characters under test

from __future__ import annotations

import pytest

from channels.email.parse import parse_email


def _with_attachment(name_param: str) -> bytes:
    return (
        "From: a@example.com\r\nTo: help@hub.example\r\nSubject: invoice\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; {name_param}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n"
    ).encode("ascii")


@pytest.mark.parametrize(
    "control",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
    ],
)
def test_attachment_names_lose_bidi_and_format_characters(control):
    encoded = "".join(f"%{b:02X}" for b in f"invoice{control}gpj.exe".encode())
    email = parse_email(_with_attachment(f"filename*=utf-8''{encoded}"))
    assert [a.filename for a in email.attachments] == ["invoicegpj.exe"]


def test_an_rfc2047_name_with_a_right_to_left_override_keeps_its_real_extension():
    email = parse_email(_with_attachment('filename="=?utf-8?b?aW52b2ljZeKArmdwai5leGU=?="'))
    assert [a.filename for a in email.attachments] == ["invoicegpj.exe"]


def _plain(body: bytes, charset: str, transfer: str = "8bit") -> bytes:
    return (
        "From: a@example.com\r\nTo: help@hub.example\r\nSubject: hello\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {transfer}\r\n\r\n"
    ).encode("ascii") + body


_SCRIPTS = {
    "cyrillic": "Привет! Заказ 4711 до сих пор не пришёл, подскажите, пожалуйста, где он сейчас.",
    "cjk": "您好，我的订单四七一一号到现在还没有到，请问现在在哪里？非常感谢您的帮助。",
    "greek": "Καλησπέρα σας! Η παραγγελία μου με αριθμό 4711 δεν έχει φτάσει ακόμα, πού βρίσκεται;",
    "arabic": "مرحبا، طلبي رقم 4711 لم يصل بعد، هل يمكنكم إخباري أين هو الآن؟ شكرا جزيلا لكم.",
}


@pytest.mark.parametrize("script", sorted(_SCRIPTS))
@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\x80"])
def test_one_bad_byte_in_a_utf8_body_costs_one_character_not_the_whole_body(script, bad):
    text = _SCRIPTS[script]
    encoded = text.encode("utf-8")
    # The bad byte goes between two characters in the middle of the body.
    cut = len(text[: len(text) // 2].encode("utf-8"))
    email = parse_email(_plain(encoded[:cut] + bad + encoded[cut:], "utf-8"))
    assert email.text.strip() == text[: len(text) // 2] + "\ufffd" + text[len(text) // 2 :]


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        (
            "Здравствуйте! Мой заказ до сих пор не пришёл, подскажите, пожалуйста, где он сейчас.",
            "cp1251",
        ),
        (
            "Grüße aus München, die Lieferung ist noch nicht angekommen. Grüße, Jürgen",
            "cp1252",
        ),
    ],
)
def test_a_body_whose_declared_utf8_clearly_does_not_fit_is_detected(text, charset):
    email = parse_email(_plain(text.encode(charset), "utf-8"))
    assert email.text.strip() == text
