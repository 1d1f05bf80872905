"""Mail built to cost a parser seconds: what the hub must read off its event
loop, or refuse. Used by the stall benchmark and by the tests."""

from __future__ import annotations


def _head(subject: str, content_type: str, sender: str, to: str) -> str:
    return (
        f"From: <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    )


def empty_parts(
    count: int, *, sender: str = "mallory@attacker.test", to: str = "support@shop.test"
) -> bytes:
    """A multipart message of `count` empty parts (10,000 take the standard parser ~1 s)."""
    boundary = "b1"
    head = _head("parts", f'multipart/mixed; boundary="{boundary}"', sender, to)
    body = f"--{boundary}\r\n\r\n" * count + f"--{boundary}--\r\n"
    return (head + body).encode()


def nested_divs(
    depth: int, *, sender: str = "mallory@attacker.test", to: str = "support@shop.test"
) -> bytes:
    """An HTML body of `depth` nested `<div>`s (20,000 took ~1 s to read before
    nesting was flattened at 512, see channels/email/sanitize.py; ~30 ms now)."""
    html = "<div>" * depth + "hello" + "</div>" * depth
    return (_head("divs", "text/html; charset=utf-8", sender, to) + html + "\r\n").encode()


def many_links(
    count: int,
    parts: int = 1,
    *,
    sender: str = "mallory@attacker.test",
    to: str = "support@shop.test",
) -> bytes:
    """`parts` HTML parts of `count` links each: the cleaner checks every link's
    address in Python, so four parts of 30,000 cost ~0.8 s to read."""
    boundary = "b1"
    html = '<a href="https://shop.test/">link</a>\r\n' * count  # SMTP lines stay short
    part = f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    head = _head("links", f'multipart/mixed; boundary="{boundary}"', sender, to)
    return (head + part * parts + f"--{boundary}--\r\n").encode()
