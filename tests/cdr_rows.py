"""Generated Asterisk Master.csv rows: realistic shapes, many callers, every disposition."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

LINE_NUMBER = "+44 20 7946 0000"
DISPOSITIONS = ["ANSWERED"] * 6 + ["NO ANSWER"] * 2 + ["BUSY", "FAILED"]


def write_master_csv(path: Path, rows: int, callers: int = 300, seed: int = 5) -> None:
    """`rows` calls among `callers` customers, numbers written in several national forms."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, 8, 0, 0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        for n in range(rows):
            customer = 900000 + rng.randrange(callers)
            forms = [f"07700 {customer}", f"+44 7700 {customer}", f"(07700) {customer}"]
            number = rng.choice(forms)
            outbound = rng.random() < 0.25
            src, dst = ("201", number) if outbound else (number, "020 7946 0000")
            disposition = rng.choice(DISPOSITIONS)
            began = start + timedelta(minutes=7 * n)
            billsec = rng.randrange(20, 900) if disposition == "ANSWERED" else 0
            answered = began + timedelta(seconds=8) if disposition == "ANSWERED" else None
            ended = (answered or began) + timedelta(seconds=billsec or 25)
            stamp = "%Y-%m-%d %H:%M:%S"
            writer.writerow(
                [
                    "",
                    src,
                    dst,
                    "from-internal" if outbound else "from-trunk",
                    f'"Caller" <{src}>',
                    "SIP/201-0000" if outbound else "SIP/trunk-0000",
                    "SIP/trunk-0001" if outbound else "SIP/202-0001",
                    "Dial",
                    "SIP/202,30",
                    began.strftime(stamp),
                    answered.strftime(stamp) if answered else "",
                    ended.strftime(stamp),
                    str((ended - began).seconds),
                    str(billsec),
                    disposition,
                    "DOCUMENTATION",
                    f"1700000000.{n}",
                    "",
                ]
            )
