"""Attachment file names that are safe to store, serve and save on any system."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

MAX_FILENAME_CHARS = 200

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*]')
# Extensions mimetypes guesses poorly or not at all for types mail carries.
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/calendar": ".ics",
    "application/ms-tnef": ".dat",
    "message/rfc822": ".eml",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}


def _extension(content_type: str) -> str:
    content_type = content_type.lower()
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def make_safe_filename(name: str | None, content_type: str, index: int) -> str:
    """A safe name for an attachment: the base name only, no path separators,
    control or format (bidi) characters or leading dots, at most 200 characters, extension kept.

    Without a usable name: `attachment-<index><extension guessed from the type>`.
    """
    cleaned = unicodedata.normalize("NFC", name or "")
    cleaned = cleaned.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("", cleaned)
    # Format characters (category Cf: bidi embeddings, overrides and isolates,
    # LRM/RLM, zero-width joiners) are invisible and let "invoice\u202egpj.exe"
    # read as an image; no file name needs them.
    cleaned = "".join(ch for ch in cleaned if unicodedata.category(ch) != "Cf")
    cleaned = " ".join(cleaned.split()).lstrip(". ").rstrip(". ")
    if not cleaned:
        return f"attachment-{index}{_extension(content_type)}"
    if len(cleaned) > MAX_FILENAME_CHARS:
        stem, dot, extension = cleaned.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            cleaned = stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
        else:
            cleaned = cleaned[:MAX_FILENAME_CHARS]
    return cleaned
