"""Recognizing delivery notices: RFC 3464 reports (failed, delayed or delivered,
per recipient) and mailer daemons' prose (failed, or delayed by its subject).

A report is a `multipart/report` with a delivery-status part (with or without
the `report-type` parameter). Prose is automatic mail (a mailer daemon's address
or name, `Auto-Submitted`, a null Return-Path) whose subject says delivery failed
in one of several languages, or in which GNU Mailman's detectors (flufl.bounce:
Exim, qmail, Exchange, Yahoo, …) find failed recipients. Out-of-office replies
are automatic mail but not bounces; a person forwarding a bounce is not one.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from hub.email.models import Address, Bounce

from .charsets import decode_bytes, decode_header_text
from .headers import first_text, is_automatic, parse_addresses, parse_message_ids, raw_headers

MAX_DIAGNOSTIC_CHARS = 500
_MAX_PARTS = 200

_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
# Senders that are mail systems though their address is not a daemon's:
# MicrosoftExchange329e…@, double-bounce@, bounce-…@, "Mail Delivery System".
_DAEMON_ADDRESS = re.compile(
    r"^(?:mailer[-_]?daemon|mail[-_]?daemon|postmaster|double-bounce|bounces?|mdaemon|"
    r"microsoftexchange[0-9a-f]*|mail[-_]?delivery(?:[-_]?system)?)(?:[+._-].*)?$",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(
    r"mail delivery|mailer.?daemon|postmaster|mail system|delivery subsystem|"
    r"microsoft outlook|microsoft exchange|mail administrator",
    re.IGNORECASE,
)
# "Delivery failed" in English, German, French, Spanish, Portuguese, Russian,
# Japanese and Chinese, as mail servers word it.
_FAILURE_SUBJECT = re.compile(
    r"undeliver|returned to sender|returned mail|delivery status notification|"
    r"delivery (?:has )?failed|mail delivery failed|delivery failure|failure notice|"
    r"could not be delivered|non.?delivery|delayed mail|delivery (?:is )?delayed|"
    r"unzustellbar|nicht zugestellt|zustellung (?:fehlgeschlagen|verzögert)|"
    r"non remis|non distribu|non délivr|impossible de remettre|"
    r"[ée]chec de (?:la )?(?:remise|livraison|distribution)|"
    r"no (?:se )?(?:pudo|puede) (?:ser )?entregar|no entregad|"
    r"error (?:en la|de) entrega|entrega (?:fallida|retrasada)|"
    r"não (?:foi )?(?:entregue|pode ser entregue|foi possível entregar)|"
    r"falha (?:na|de) entrega|"
    r"недоставлен|не доставлен|не удалось доставить|невозможно доставить|"
    r"не может быть доставлен|возврат почты|"
    r"配信不能|配送不能|配信エラー|配送エラー|配信失敗|配送失敗|送信できません|届きませんでした|"
    r"退信|无法投递|投递失败|未送达|無法投遞|傳送失敗|发送失败",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(
    r"\(delay\)|delayed|still being retried|verzögert|retard|retrasad|atrasad|"
    r"задерж|遅延|延迟|延遲",
    re.IGNORECASE,
)
_FORWARDED = re.compile(r"^\s*(?:fwd?|tr|wg|rv|enc|пересл)\s*:", re.IGNORECASE)
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


def _is_daemon(sender: Address | None) -> bool:
    if sender is None:
        return False
    local = sender.email.split("@")[0]
    return bool(_DAEMON_ADDRESS.match(local) or _DAEMON_NAME.search(sender.name or ""))


def _returned_id(message: Message, body: str) -> str | None:
    """The Message-ID of the returned message: its attached copy or headers, else
    a `Message-ID:` line quoted in the notice."""
    for index, part in enumerate(message.walk()):
        if index >= _MAX_PARTS:
            break
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            found = _original_id(part)
            if found:
                return found
    return _body_message_id(body)


def _daemon_bounce(
    message: Message,
    headers: dict[str, list[str]],
    body: str,
    own: set[str],
    action: str,
    detected: list[str],
) -> Bounce:
    failed = parse_addresses(headers.get("x-failed-recipients", []))
    recipient = failed[0].email if failed else None
    if recipient is None:
        recipient = next((address for address in detected if address not in own), None)
    if recipient is None:
        for match in _BODY_RECIPIENT.finditer(body[:5000]):
            address = match.group(1).lower()
            if address not in own and address.split("@")[0] not in _DAEMON_LOCAL_PARTS:
                recipient = address
                break
    status_match = _STATUS.search(body[:20000])
    reply_match = _SMTP_REPLY.search(body[:20000])
    return Bounce(
        original_message_id=_returned_id(message, body),
        recipient=recipient,
        status=status_match.group(1) if status_match else None,
        diagnostic=_one_line(reply_match.group(0)) if reply_match else None,
        action=action,
    )


def _has_status_part(message: Message) -> bool:
    for index, part in enumerate(message.walk()):
        if index >= _MAX_PARTS:
            return False
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return True
    return False


def _detected(message: Message) -> tuple[list[str], list[str]]:
    """(permanent, temporary) failed recipients that flufl.bounce finds, sorted."""
    temporary, permanent = all_failures(message)

    def addresses(found: frozenset[bytes]) -> list[str]:
        return sorted(a.decode("ascii", "replace").lower() for a in found if b"@" in a)

    return addresses(permanent), addresses(temporary)


def find_bounce(
    message: Message,
    headers: dict[str, list[str]],
    sender: Address | None,
    subject: str,
    body: str,
    own: set[str],
) -> Bounce | None:
    """A Bounce when the message reports on a delivery, else None.

    `own` are the message's own addresses (To, Cc), never taken as the failed
    recipient of a prose notice.
    """
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type", "")).lower()
        if report_type == "delivery-status" or (not report_type and _has_status_part(message)):
            return _report_bounce(message, body)
        return None  # a read receipt (disposition-notification) or another report
    daemon = _is_daemon(sender)
    null_path = first_text(headers, "return-path").strip() == "<>"
    if not (daemon or null_path or is_automatic(headers)) or _FORWARDED.match(subject):
        return None  # a person's mail, or a person forwarding a bounce
    permanent, temporary = _detected(message)
    says_failed = bool(_FAILURE_SUBJECT.search(subject))
    if not daemon:  # other automatic mail (an auto-reply) needs more than its subject
        says_failed = says_failed and _STATUS.search(body[:20000]) is not None
    if not (says_failed or permanent or temporary):
        return None
    delayed = not permanent and (bool(temporary) or bool(_DELAY_SUBJECT.search(subject)))
    action = "delayed" if delayed else "failed"
    return _daemon_bounce(message, headers, body, own, action, permanent or temporary)
