"""Figures, progress lines and the Markdown results table."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@dataclass
class Figure:
    """One measured figure: the hub's value beside the baseline's, and the target."""

    benchmark: str
    size: str
    measure: str
    hub: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None  # None: no target for this figure

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.hub / self.baseline


def relative(
    benchmark: str,
    size: str,
    measure: str,
    hub: float,
    baseline: float,
    unit: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
) -> Figure:
    """A figure whose target is a multiple of the baseline (at most or at least)."""
    figure = Figure(benchmark, size, measure, hub, baseline, unit)
    if at_most is not None:
        figure.target, figure.met = f"≤ {at_most:g}x baseline", hub <= at_most * baseline
    elif at_least is not None:
        figure.target, figure.met = f"≥ {at_least:g}x baseline", hub >= at_least * baseline
    return figure


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    # benchmark -> (file name suffix, SVG text), written beside the table
    charts: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def note(self, benchmark: str, text: str) -> None:
        self.notes.setdefault(benchmark, []).append(text)


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, benchmark: str, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {benchmark}: {text}", flush=True)


def number(value: float | None, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "—"
    if value == int(value) and not unit:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _ratio(ratio: float | None) -> str:
    if ratio is None or math.isnan(ratio):
        return "—"
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def _versions() -> str:
    parts = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    for package in ("websockets", "uvicorn", "starlette", "SQLAlchemy", "aiosqlite"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return ", ".join(parts)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            kib = int(info.readline().split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def machine() -> str:
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory()} memory, "
        f"{platform.system()} {platform.release()}"
    )


def markdown(
    results: Results, mode: str, pinned: bool, fd_limit: int, elapsed: float, output: Path
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- versions: {_versions()}",
        f"- mode: {mode}; run took {elapsed:.0f} s; command: `make bench` "
        f"(`python -m bench.run{' --quick' if mode == 'quick' else ''}`)",
        f"- servers under test pinned to one core, the load generator to another: "
        f"{'yes' if pinned else 'no (fewer than 2 cores or no sched_setaffinity)'}; "
        f"open-file limit raised to {fd_limit}",
        "",
        "ratio = hub ÷ baseline. What each row measures: bench/README.md.",
        "",
        "| benchmark | size | measure | hub | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in results.figures:
        ratio = f.ratio
        met = {True: "yes", False: "**no**", None: "—"}[f.met]
        lines.append(
            f"| {f.benchmark} | {f.size} | {f.measure} | {number(f.hub, f.unit)} "
            f"| {number(f.baseline, f.unit)} | {_ratio(ratio)} "
            f"| {f.target or '—'} | {met} |"
        )
    for benchmark, notes in results.notes.items():
        lines += ["", f"**{benchmark}**", ""]
        lines += [f"- {text}" for text in notes]
        if benchmark in results.charts:
            lines += ["", f"![{benchmark}]({chart_path(output, benchmark, results).name})"]
    return "\n".join(lines) + "\n"


def chart_path(output: Path, benchmark: str, results: Results) -> Path:
    """Where a benchmark's chart goes: beside the table, named after it."""
    return output.with_name(f"{output.stem}-{results.charts[benchmark][0]}.svg")


def write_charts(output: Path, results: Results) -> None:
    for benchmark, (_, svg) in results.charts.items():
        chart_path(output, benchmark, results).write_text(svg, encoding="utf-8")


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    print(f"\nResults table written to {path}", file=sys.stderr)
