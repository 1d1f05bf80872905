"""Hypothesis strategies for tests/test_fuzz_edges.py: random and mutated
websocket frames, forms, headers and bodies, plus the two checks every fuzzed
edge shares (what the store holds, what the server logged)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hub.core import Hub
from storage.tables import metadata

# Small and fixed, so the suite is the same on every run and quick in `make test`:
# derandomized (the examples follow from the test), no example database.
FUZZ = settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    # One live server and one session serve every example of a test, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# An HTTP example is one request on an open connection: many more fit the same time.
FUZZ_HTTP = settings(FUZZ, max_examples=100)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Text that is JSON-like but broken: a stranger's typos and tricks.
_json_junk = st.sampled_from(
    [
        "",
        "{",
        "[" * 5000,
        '{"type": NaN}',
        '{"type": "ping", "x": Infinity}',
        '{"type": "ping"}{"type": "ping"}',
        '"\\ud800"',
        '{"type": "message", "client_id": 1e999}',
        "null",
        '{"type": ["ping"]}',
    ]
)

# Nested past the standard library's recursion limit, inside a plausible object.
deep_json = st.tuples(st.integers(1_000, 5_000), st.sampled_from(["[", '{"a":'])).map(
    lambda depth_open: (
        '{"type": "ping", "x": '
        + depth_open[1] * depth_open[0]
        + "1"
        + ("]" if depth_open[1] == "[" else "}") * depth_open[0]
        + "}"
    )
)
hostile_json = _json_junk | deep_json


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def mutated_frames(
    examples: list[dict[str, Any]], types: tuple[str, ...]
) -> st.SearchStrategy[str | bytes]:
    """Frame texts: real frames with fields replaced, dropped or added, any
    known or unknown `type`, raw JSON values, broken JSON, or binary frames."""

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        frame = dict(draw(st.sampled_from(examples)))
        for _ in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from([*frame, "type", "conversation_id", "seq", "text", "x"]))
            if draw(st.booleans()):
                frame[name] = draw(json_values)
            else:
                frame.pop(name, None)
        if draw(st.integers(0, 4)) == 0:
            frame["type"] = draw(st.sampled_from(types) | st.text(max_size=10))
        return _dumps(frame)

    return st.one_of(
        mutate(),
        json_values.map(_dumps),
        hostile_json,
        hostile_json,
        st.text(max_size=200),
        st.binary(max_size=64),
    )


_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "text/plain",
            "application/json; charset=latin-1",
            "",
        ]
    )
    | _header_text
)


_printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
origins = st.one_of(
    st.text(_printable, max_size=40),
    st.builds(
        "{}://{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
        st.sampled_from(["shop.test", "[::1", "[::1]", "127.0.0.2", ""])
        | st.text(_printable, max_size=12),
        st.sampled_from(["", ":1", ":99999", ":port.evil", ":-1", ":"])
        | st.text(_printable, max_size=8),
    ),
)


@st.composite
def http_requests(draw: st.DrawFn, field_names: list[str]) -> tuple[dict[str, str], bytes]:
    """(headers, body): a form (known or random field names), a JSON value, or
    raw bytes, sent under a matching, mismatched or random Content-Type."""
    names = st.sampled_from(field_names) | st.text(max_size=10)
    kind = draw(st.sampled_from(["form", "json", "hostile json", "raw"]))
    if kind == "form":
        pairs = draw(st.lists(st.tuples(names, st.text(max_size=60)), max_size=8))
        body = urlencode(pairs).encode()
        matching = "application/x-www-form-urlencoded"
    elif kind == "json":
        value = draw(st.dictionaries(names, json_values, max_size=6) | json_values)
        body, matching = _dumps(value).encode(), "application/json"
    elif kind == "hostile json":
        body, matching = draw(hostile_json).encode(), "application/json"
    else:
        body, matching = draw(st.binary(max_size=300)), "application/octet-stream"
    # Mostly the type that fits the body, so the parsers behind it are reached.
    kind_header = st.just(matching) | st.just(matching) | content_types
    headers = {"Content-Type": draw(kind_header)}
    if draw(st.booleans()):
        headers["Accept"] = draw(
            st.sampled_from(["application/json", "text/html", "*/*"]) | _header_text
        )
    if draw(st.integers(0, 5)) == 0:
        headers[
            draw(st.sampled_from(["X-Forwarded-For", "Origin", "Referer", "X-Twilio-Signature"]))
        ] = draw(_header_text)
    return headers, body


async def row_counts(hub: Hub) -> dict[str, int]:
    """How many rows every table holds (the store's writes, as a test sees them)."""
    async with hub.db.read() as conn:
        return {
            table.name: await conn.scalar(sa.select(sa.func.count()).select_from(table))
            for table in metadata.sorted_tables
        }


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def server_log() -> Iterator[list[logging.LogRecord]]:
    """The WARNING-and-above records of the app and of uvicorn (whose loggers do
    not propagate to the root logger pytest's caplog listens on)."""
    handler = _Collect()
    loggers = [
        logging.getLogger(),
        logging.getLogger("uvicorn"),
        logging.getLogger("uvicorn.error"),
    ]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    """What was logged as an error or with a traceback."""
    return [
        f"{record.name}: {record.getMessage()}"
        for record in records
        if record.levelno >= logging.ERROR or record.exc_info
    ]
