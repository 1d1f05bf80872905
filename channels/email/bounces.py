"""Recognizing delivery notices: RFC 3464 reports (failed, delayed or delivered,
per recipient) and mailer daemons' prose (always a failure).

Out-of-office replies are automatic mail but not bounces; only a report of type
delivery-status, or a message from a mailer daemon with a failure subject, is.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from hub.email.models import Address, Bounce

from .charsets import decode_bytes, decode_header_text
from .headers import parse_addresses, parse_message_ids, raw_headers

MAX_DIAGNOSTIC_CHARS = 500
_MAX_PARTS = 200

_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_FAILURE_SUBJECT = re.compile(
    r"undeliver|returned to sender|returned mail|delivery status notification \(failure\)|"
    r"delivery (?:has )?failed|mail delivery failed|delivery failure|failure notice|"
    r"could not be delivered|non.?delivery|unzustellbar|nicht zugestellt",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -].*")
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.M)
_BODY_RECIPIENT = re.compile(r"<?([\w.+'=-]+@[\w-]+(?:\.[\w-]+)+)>?")


def _one_line(text: str) -> str | None:
    line = " ".join(text.split())
    return line[:MAX_DIAGNOSTIC_CHARS] or None


def _field(block: dict[str, list[str]], name: str) -> str:
    values = block.get(name)
    return decode_header_text(values[0]) if values else ""


def _status_blocks(part: Message) -> list[dict[str, list[str]]]:
    if part.is_multipart():  # the parser read the blocks as header sets
        return [raw_headers(block) for block in part.get_payload() if isinstance(block, Message)]
    data = part.get_payload(decode=True) or b""
    text = decode_bytes(data if isinstance(data, bytes) else b"").replace("\r\n", "\n")
    return [raw_headers(HeaderParser().parsestr(chunk)) for chunk in text.split("\n\n")]


def _original_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload() if part.is_multipart() else None
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            ids = parse_message_ids(raw_headers(inner[0]).get("message-id", []))
            return ids[0] if ids else None
        return None
    data = part.get_payload(decode=True)
    text = decode_bytes(data if isinstance(data, bytes) else b"")
    match = _QUOTED_MESSAGE_ID.search(text)
    return match.group(1)[1:-1] if match else None


def _action(block: dict[str, list[str]], status: str | None) -> str:
    """failed, delayed or delivered (relayed and expanded are delivered onwards);
    a block without `Action:` is read by its status class."""
    action = _field(block, "action").strip().lower()
    if action in ("failed", "delayed"):
        return action
    if action in ("delivered", "relayed", "expanded"):
        return "delivered"
    return {"4": "delayed", "2": "delivered"}.get((status or "5")[0], "failed")


def _report_bounce(message: Message, body: str) -> Bounce:
    """Per recipient: a failed one wins, then a delayed one, then a delivered one."""
    reports: list[tuple[str, str | None, str | None, str | None]] = []
    original = None
    for index, part in enumerate(message.walk()):
        if index >= _MAX_PARTS:
            break
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            for block in _status_blocks(part):
                if "final-recipient" not in block and "action" not in block:
                    continue  # the per-message block (Reporting-MTA, Arrival-Date)
                address = _field(block, "final-recipient").rpartition(";")[2]
                found = parse_addresses([address])
                found_status = _STATUS.search(_field(block, "status"))
                status = found_status.group(1) if found_status else None
                diagnostic = _one_line(
                    _field(block, "diagnostic-code").partition(";")[2]
                    or _field(block, "diagnostic-code")
                )
                reports.append(
                    (_action(block, status), found[0].email if found else None, status, diagnostic)
                )
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _original_id(part)
    if original is None:
        original = _body_message_id(body)
    rank = {"failed": 0, "delayed": 1, "delivered": 2}
    action, recipient, status, diagnostic = min(
        reports or [("failed", None, None, None)], key=lambda report: rank[report[0]]
    )
    return Bounce(
        original_message_id=original,
        recipient=recipient,
        status=status,
        diagnostic=diagnostic,
        action=action,
    )


def _body_message_id(body: str) -> str | None:
    match = _QUOTED_MESSAGE_ID.search(body)
    return match.group(1)[1:-1] if match else None


def _daemon_bounce(headers: dict[str, list[str]], body: str, own: set[str]) -> Bounce:
    failed = parse_addresses(headers.get("x-failed-recipients", []))
    recipient = failed[0].email if failed else None
    if recipient is None:
        for match in _BODY_RECIPIENT.finditer(body[:5000]):
            address = match.group(1).lower()
            if address not in own and address.split("@")[0] not in _DAEMON_LOCAL_PARTS:
                recipient = address
                break
    status_match = _STATUS.search(body[:20000])
    reply_match = _SMTP_REPLY.search(body[:20000])
    return Bounce(
        original_message_id=_body_message_id(body),
        recipient=recipient,
        status=status_match.group(1) if status_match else None,
        diagnostic=_one_line(reply_match.group(0)) if reply_match else None,
    )


def find_bounce(
    message: Message,
    headers: dict[str, list[str]],
    sender: Address | None,
    subject: str,
    body: str,
    own: set[str],
) -> Bounce | None:
    """A Bounce when the message reports a failed delivery, else None.

    `own` are the message's own addresses (To, Cc), never taken as the failed
    recipient of a prose notice.
    """
    if message.get_content_type() == "multipart/report":
        if str(message.get_param("report-type", "")).lower() == "delivery-status":
            return _report_bounce(message, body)
        return None
    if sender is None or sender.email.split("@")[0] not in _DAEMON_LOCAL_PARTS:
        return None
    if not _FAILURE_SUBJECT.search(subject):
        return None
    return _daemon_bounce(headers, body, own)
