"""The email policy mail is read with: the standard library's default, with
each header value parsed once.

The default policy parses a header anew on every `message.get()`, and the
readers ask for a part's Content-Type a dozen times (its type, its charset,
its filename, whether it is a report...): for an ordinary one-part mail that
was 70 % of the parse. Parsed headers are immutable, so one parse per distinct
(name, value) is shared, within a message and across the messages one worker
reads.
"""

from __future__ import annotations

import functools
from email.policy import EmailPolicy
from typing import Any

_DEFAULT = EmailPolicy()
# Distinct header values kept parsed; a message has a few dozen.
CACHED_HEADERS = 512


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _parsed(name: str, value: str) -> Any:
    return _DEFAULT.header_fetch_parse(name, value)


class _ParseOnce(EmailPolicy):
    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if type(value) is str:
            return _parsed(name, value)
        return super().header_fetch_parse(name, value)


READING_POLICY = _ParseOnce()
