"""Email ingest: the corpus mix delivered over SMTP to `hub mail`, and stored by
direct calls to the hub's ingest, against parsing the same messages with the
`email` package alone (`BytesParser(policy=default)`) in the same run.

`hub mail`, the direct ingest and the parse baseline each run in their own
process pinned to the server core; the SMTP clients (aiosmtplib, several
connections at once, each reusing its connection as an MTA does) are this
process, on the generator core. Latency over SMTP is from sending DATA to
receiving its 250, which the hub answers only once the message is stored.

`python -m bench.email_ingest parse|direct|seed FILE` are the worker
commands the benchmark runs; they are not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context
from bench.procs import ROOT, HubSetup, Server, _start, free_port, pinned
from bench.report import Figure
from bench.stats import CpuMeter, percentiles

NAME = "Email ingest"
FULL_MESSAGES = 3_000
QUICK_MESSAGES = 300
# Concurrent SMTP connections: a busy MTA delivers over a handful at once
# (Postfix's default concurrency per destination is 20; a single MX sees fewer).
CLIENTS = 8
INBOX = "support@bench.test"
SENDER = "customer@bench.test"
_MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


# ---- the messages -------------------------------------------------------------------------


CORPUS_DIR = ROOT / "tests" / "email_corpus"


def corpus() -> tuple[list[bytes], str]:
    """The test corpus (tests/email_fixtures.py, or its directory), else a small built-in mix."""
    try:
        from tests.email_fixtures import corpus_files
    except ImportError:
        files = sorted(CORPUS_DIR.glob("*.eml"))
        if not files:
            return _builtin_mix(), "a built-in mix of 6 messages (no tests/email_corpus)"
        return [f.read_bytes() for f in files], f"tests/email_corpus, {len(files)} files"
    found = [_bytes_of(item) for item in corpus_files()]
    return found, f"the test corpus, {len(found)} files (tests/email_fixtures.py)"


def _bytes_of(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, tuple):
        return _bytes_of(item[-1])
    return Path(str(item)).read_bytes()


def _builtin_mix() -> list[bytes]:
    head = "From: Alice <alice@customer.test>\r\nTo: support@bench.test\r\n"
    return [
        f"{head}Subject: Order late\r\n\r\nMy order has not arrived.\r\n".encode(),
        (
            f"{head}Subject: Re: Order\r\nIn-Reply-To: <x@hub.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n\r\n> earlier\r\n"
            "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Thanks!</p>"
            "<blockquote>earlier</blockquote>\r\n--b--\r\n"
        ).encode(),
        (
            f"{head}Subject: =?iso-8859-1?q?Caf=E9?=\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=iso-8859-1\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me\r\n"
        ).encode("latin-1"),
        (
            f"{head}Subject: Invoice\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
            "Content-Type: text/plain\r\n\r\nSee attached.\r\n--m\r\n"
            'Content-Type: application/pdf; name="inv.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + "JVBERi0xLjQK" * 400 + "\r\n--m--\r\n"
        ).encode(),
        f"{head}Subject: Away\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n".encode(),
        b"From: MAILER-DAEMON@mx.test\r\nTo: support@bench.test\r\nSubject: failure\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        b'boundary="r"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--r\r\n'
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        b"Final-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n--r--\r\n",
    ]


def messages(count: int, mix: list[bytes]) -> list[bytes]:
    """`count` messages cycling through the mix, each with its own Message-ID (so
    none is dropped as a duplicate) and CRLF line endings, as SMTP carries them."""
    out = []
    for index in range(count):
        raw = mix[index % len(mix)].replace(b"\r\n", b"\n")
        head, sep, body = raw.partition(b"\n\n")
        head = _MESSAGE_ID.sub(b"", head + b"\n").rstrip(b"\n")
        raw = b"Message-ID: <bench.%d@bench.test>\n" % index + head + sep + body
        out.append(raw.replace(b"\n", b"\r\n"))
    return out


def write_messages(path: Path, items: list[bytes]) -> None:
    with path.open("wb") as out:
        for raw in items:
            out.write(len(raw).to_bytes(4, "big") + raw)


def read_messages(path: Path) -> list[bytes]:
    data, items, at = path.read_bytes(), [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        items.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return items


# ---- workers (subprocesses on the server core) ----------------------------------------------


def _timed(items: list[bytes], handle) -> dict:  # type: ignore[no-untyped-def]
    latencies = []
    cpu = CpuMeter().start()
    started = time.perf_counter()
    for raw in items:
        t0 = time.perf_counter_ns()
        handle(raw)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    seconds = time.perf_counter() - started
    return {
        "count": len(items),
        "per_second": len(items) / seconds,
        "cpu": cpu.percent(),
        **percentiles(latencies),
    }


def _parse_only(path: Path) -> dict:
    from email import policy
    from email.parser import BytesParser

    parser = BytesParser(policy=policy.default)
    return _timed(read_messages(path), parser.parsebytes)


async def _direct(path: Path) -> dict:
    from channels.email.parse import parse_email
    from hub.composition.assemble import start_hub
    from hub.email.models import Envelope
    from hub.settings import Settings

    hub = await start_hub(Settings.load())
    try:
        inbox = await hub.email_inboxes.by_address(INBOX)
        assert inbox is not None, "seed first"
        envelope = Envelope(recipients=(INBOX,), mail_from=SENDER)
        items = read_messages(path)
        latencies = []
        cpu = CpuMeter().start()
        started = time.perf_counter()
        for raw in items:
            t0 = time.perf_counter_ns()
            await hub.email.ingest(inbox, parse_email(raw), envelope)
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
        seconds = time.perf_counter() - started
        return {
            "count": len(items),
            "per_second": len(items) / seconds,
            "cpu": cpu.percent(),
            **percentiles(latencies),
        }
    finally:
        await hub.stop()


async def _seed() -> None:
    from hub.composition.assemble import start_hub
    from hub.email.inboxes import EmailInboxConfig
    from hub.settings import Settings

    hub = await start_hub(Settings.load())
    try:
        await hub.email_inboxes.create(EmailInboxConfig(name="Bench support", address=INBOX))
    finally:
        await hub.stop()


def _worker(argv: list[str], env: dict[str, str] | None = None) -> dict:
    command = pinned([sys.executable, "-m", "bench.email_ingest", *argv])
    done = subprocess.run(  # noqa: S603 - our own argv
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout or "{}")


# ---- SMTP clients (this process, the generator core) ----------------------------------------


async def _deliver(port: int, items: list[bytes], ctx: Context) -> dict:
    import aiosmtplib

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in items:
        queue.put_nowait(raw)
    latencies: list[float] = []
    errors: list[str] = []
    step = max(1, len(items) // 10)

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120, start_tls=False)
        await smtp.connect()
        try:
            while not queue.empty():
                raw = queue.get_nowait()
                await smtp.mail(SENDER)
                await smtp.rcpt(INBOX)
                t0 = time.perf_counter_ns()
                try:
                    await smtp.data(raw)
                except aiosmtplib.SMTPResponseException as exc:
                    errors.append(f"{exc.code} {exc.message}")
                    continue
                latencies.append((time.perf_counter_ns() - t0) / 1e6)
                if len(latencies) % step == 0:
                    ctx.progress(NAME, f"SMTP: {len(latencies):,}/{len(items):,} stored")
        finally:
            await smtp.quit()

    cpu = CpuMeter().start()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    seconds = time.perf_counter() - started
    return {
        "count": len(latencies),
        "per_second": len(latencies) / seconds,
        "generator_cpu": cpu.percent(),
        "errors": errors,
        **percentiles(latencies),
    }


def _stored(database: Path) -> int:
    """Messages kept: on tickets, or (a bounce of mail we never sent) in the bounce log."""
    with sqlite3.connect(database) as db:
        on_tickets = db.execute("SELECT count(*) FROM email_messages WHERE direction = 'in'")
        logged = db.execute("SELECT count(*) FROM email_unmatched_bounces")
        return int(on_tickets.fetchone()[0]) + int(logged.fetchone()[0])


def _load() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


async def _smtp_run(ctx: Context, path: Path, items: list[bytes]) -> dict:
    setup = await asyncio.to_thread(HubSetup.create, 1, ctx.work)
    try:
        await asyncio.to_thread(_worker, ["seed", str(path)], setup.env)
        port = free_port()
        env = {
            **setup.env,
            # One generator address sends everything: lift the per-client limits.
            "HUB_MAIL_MESSAGES_PER_MINUTE": "0",
            "HUB_MAIL_CONNECTIONS_PER_IP": str(CLIENTS * 2),
            "HUB_MAIL_HOSTNAME": "bench.test",
        }
        argv = [sys.executable, "-m", "hub", "mail", "--port", str(port)]
        server: Server = await _start(argv, env, port, setup.data_dir / "mail.log")
        try:
            meter = CpuMeter(server.pid).start()
            result = await _deliver(port, items, ctx)
            result["server_cpu"] = meter.percent()
        finally:
            await server.stop()
        result["stored"] = _stored(setup.database)
        return result
    finally:
        setup.remove()


async def _direct_run(ctx: Context, path: Path) -> dict:
    setup = await asyncio.to_thread(HubSetup.create, 1, ctx.work)
    try:
        await asyncio.to_thread(_worker, ["seed", str(path)], setup.env)
        result = await asyncio.to_thread(_worker, ["direct", str(path)], setup.env)
        result["stored"] = _stored(setup.database)
        return result
    finally:
        setup.remove()


async def run(ctx: Context) -> None:
    count = QUICK_MESSAGES if ctx.quick else FULL_MESSAGES
    mix, source = corpus()
    items = messages(count, mix)
    path = ctx.work / "email-messages.bin"
    write_messages(path, items)
    load_before = _load()
    ctx.progress(NAME, f"baseline: parsing {count:,} messages with the email package")
    parse = await asyncio.to_thread(_worker, ["parse", str(path)])
    ctx.progress(NAME, f"direct ingest: parsing and storing {count:,} messages")
    direct = await _direct_run(ctx, path)
    ctx.progress(NAME, f"SMTP: {count:,} messages over {CLIENTS} connections to `hub mail`")
    smtp = await _smtp_run(ctx, path, items)
    size = f"{count:,} messages"
    ctx.results.add(
        Figure(
            NAME,
            size,
            "SMTP to hub mail: emails stored per second",
            smtp["per_second"],
            parse["per_second"],
            "/s",
        ),
        Figure(NAME, size, "SMTP: DATA sent → 250 (stored), p50", smtp["p50"], parse["p50"], "ms"),
        Figure(NAME, size, "SMTP: DATA sent → 250 (stored), p99", smtp["p99"], parse["p99"], "ms"),
        Figure(
            NAME,
            size,
            "direct ingest (parse + store): emails per second",
            direct["per_second"],
            parse["per_second"],
            "/s",
        ),
        Figure(
            NAME, size, "direct ingest: time per message, p50", direct["p50"], parse["p50"], "ms"
        ),
        Figure(
            NAME, size, "direct ingest: time per message, p99", direct["p99"], parse["p99"], "ms"
        ),
    )
    ctx.results.note(
        NAME,
        f"messages: {source}, cycled to {count:,}, each with its own Message-ID; "
        f"{sum(map(len, items)) / count / 1024:.1f} KiB on average. Baseline: "
        f"`BytesParser(policy=default).parsebytes` of the same bytes in a process on the "
        f"server core ({parse['per_second']:,.0f}/s, p50 {parse['p50']:.2f} ms, p99 "
        f"{parse['p99']:.2f} ms).",
    )
    ctx.results.note(
        NAME,
        f"SMTP: {CLIENTS} aiosmtplib connections, one RCPT each; stored {smtp['stored']:,} of "
        f"{count:,}; refused {len(smtp['errors'])}"
        + (f" (first: {smtp['errors'][0]})" if smtp["errors"] else "")
        + f"; max {smtp['max']:.1f} ms; hub mail CPU {smtp['server_cpu']:.0f} %, generator "
        f"CPU {smtp['generator_cpu']:.0f} %"
        + (" (saturated)" if smtp["generator_cpu"] > 90 else "")
        + ".",
    )
    ctx.results.note(
        NAME,
        f"direct ingest: one message at a time in one process (SQLite, one transaction "
        f"each); stored {direct['stored']:,}; max {direct['max']:.1f} ms; CPU "
        f"{direct['cpu']:.0f} %. Load average (1, 5, 15 min) before: {load_before}, "
        f"after: {_load()} — other work on this machine shows here.",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["parse", "direct", "seed"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    if args.mode == "parse":
        print(json.dumps(_parse_only(args.file)))
    elif args.mode == "direct":
        print(json.dumps(asyncio.run(_direct(args.file))))
    else:
        asyncio.run(_seed())
    return 0


if __name__ == "__main__":
    sys.exit(main())
