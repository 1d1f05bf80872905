"""Hostile charsets and files in mail: bad bytes, non-MIME binaries, bidi file names."""

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
