"""The benchmark harness itself works: its statistics, its markers, and one tiny benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import email_ingest, latency, nodes, storm
from bench.context import Context
from bench.report import Progress, Results, markdown
from bench.stats import percentiles
from tests.servers import require_redis


def test_percentiles_use_the_nearest_rank() -> None:
    spread = percentiles([float(x) for x in range(100, 0, -1)])
    assert spread == {"p50": 50.0, "p99": 99.0, "max": 100.0}


def test_percentiles_of_nothing_are_not_numbers() -> None:
    assert all(math.isnan(value) for value in percentiles([]).values())


def test_a_marked_text_is_found_inside_a_frame() -> None:
    frame = '{"type":"message","message":{"seq":3,"text":"' + latency.text(7, " hi") + '"}}'
    event, sent = latency.parse(frame)
    assert event == 7
    assert sent > 0
    assert latency.parse('{"type":"pong"}') is None


async def test_a_tiny_connection_storm_runs_against_the_hub_and_the_bare_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storm, "QUICK_VISITORS", 5)
    ctx = Context(quick=True, work=tmp_path, progress=Progress(), results=Results())

    await storm.run(ctx)

    lost = next(f for f in ctx.results.figures if f.measure.startswith("messages lost"))
    assert lost.hub == 0
    assert lost.met is True
    table = markdown(ctx.results, "quick", pinned=False, fd_limit=1024, elapsed=1.0)
    assert "| Connection storm | 5 visitors |" in table


async def test_a_tiny_bus_run_compares_the_hub_bus_with_raw_redis(tmp_path: Path) -> None:
    await require_redis()
    tiny = nodes.Sizes(
        visitors=2, rates=(5,), step_seconds=0.5, bus_seconds=0.1, flood_messages=200
    )
    ctx = Context(quick=True, work=tmp_path, progress=Progress(), results=Results())

    runs = await nodes._bus(ctx, tiny)
    nodes._report_bus(ctx, tiny, runs)

    assert runs["bus"]["received"] == runs["bus"]["sent"] == 500
    assert runs["raw-flood"]["received"] == 200
    table = markdown(ctx.results, "quick", pinned=False, fd_limit=1024, elapsed=1.0)
    assert "| Cross-node | bus alone, 2 processes, 0.1 s |" in table


async def test_a_tiny_email_ingest_stores_every_message_over_smtp_and_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(email_ingest, "QUICK_MESSAGES", 12)
    ctx = Context(quick=True, work=tmp_path, progress=Progress(), results=Results())

    await email_ingest.run(ctx)

    measures = {f.measure: f for f in ctx.results.figures}
    rate = measures["SMTP to hub mail: emails stored per second"]
    assert rate.hub > 0 and rate.baseline and rate.baseline > 0
    notes = " ".join(ctx.results.notes[email_ingest.NAME])
    assert "stored 12 of 12; refused 0" in notes
    assert "direct ingest: one message at a time" in notes and "stored 12;" in notes


def test_every_email_bench_message_has_its_own_message_id() -> None:
    mix = email_ingest._builtin_mix()
    items = email_ingest.messages(20, [b"Message-ID: <same@x>\r\nSubject: a\r\n\r\nhi\r\n", *mix])
    ids = [raw.split(b"\r\n", 1)[0] for raw in items]
    assert len(set(ids)) == 20
    assert all(raw.lower().count(b"message-id:") == 1 for raw in items)
    assert all(b"\n" not in raw.replace(b"\r\n", b"") for raw in items)
