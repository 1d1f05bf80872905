"""Agents' pictures: PNG, JPEG or WebP up to 1 MB, recognised by their bytes
(Pillow is not a dependency; the first bytes of each format say what it is)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import InvalidInput, TooLarge

MAX_AVATAR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Avatar:
    content_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The image type the bytes begin as, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_avatar(data: bytes) -> Avatar:
    if len(data) > MAX_AVATAR_BYTES:
        raise TooLarge("A picture is at most 1 MB.")
    content_type = sniff(data)
    if content_type is None:
        raise InvalidInput("Upload a PNG, JPEG or WebP picture.", "avatar")
    return Avatar(content_type, data)
