"""The files a message carries: kept within the size limits, or listed as dropped."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from email.message import Message

from hub.email.filenames import make_safe_filename
from hub.email.models import Attachment

from .mime_parts import content_id, disposition


@dataclass
class Attachments:
    """The attachments kept so far, and the names of those dropped with why."""

    max_attachment: int
    max_total: int
    kept: list[Attachment] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    total: int = 0

    def refuse(self, size: int) -> str | None:
        """Why an attachment of `size` bytes cannot be kept, or None if it can."""
        if size > self.max_attachment:
            return "too large"
        if self.total + size > self.max_total:
            return "total limit"
        return None

    def drop(self, name: str | None, content_type: str, reason: str) -> None:
        """List an attachment as dropped, under the name it would have had."""
        index = len(self.kept) + len(self.dropped) + 1
        self.dropped.append(f"{make_safe_filename(name, content_type, index)} ({reason})")

    def add(self, part: Message, data: bytes, *, name: str | None, content_type: str) -> None:
        """Keep `data` as an attachment, or list it as dropped if over a limit."""
        reason = self.refuse(len(data))
        if reason is not None:
            self.drop(name, content_type, reason)
            return
        self.total += len(data)
        cid = content_id(part)
        self.kept.append(
            Attachment(
                filename=make_safe_filename(name, content_type, len(self.kept) + 1),
                content_type=content_type,
                data=data,
                content_id=cid,
                inline=cid is not None and disposition(part) != "attachment",
            )
        )


def inline_where_shown(attachments: list[Attachment], html: str | None) -> tuple[Attachment, ...]:
    """A part the HTML shows by `cid:` is an inline image, whatever its disposition
    says (Python's own add_related writes "attachment")."""
    if not html:
        return tuple(attachments)
    return tuple(
        replace(a, inline=True)
        if a.content_id and not a.inline and f"cid:{a.content_id}" in html
        else a
        for a in attachments
    )
