"""A small SVG chart of the chat-load steps: offered against acknowledged rate,
and the ack p99 against its limit. Plain SVG text, no plotting library."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 760, 320
PANEL_W, PANEL_H = 290, 200
TOP, LEFT_A, LEFT_B = 60, 60, 440
INK, MUTED, ACCENT, LIMIT = "#1f2937", "#9ca3af", "#2563eb", "#dc2626"


@dataclass(frozen=True)
class StepPoint:
    offered: float
    acked: float
    p99_ms: float
    passed: bool


def _scale(value: float, top: float, size: float) -> float:
    return size * value / top if top else 0.0


def _nice_top(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _axes(left: float, x_top: float, y_top: float, y_label: str) -> list[str]:
    bottom = TOP + PANEL_H
    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{left + PANEL_W}" y2="{bottom}" stroke="{MUTED}"/>',
        f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="{MUTED}"/>',
        f'<text x="{left + PANEL_W / 2}" y="{bottom + 34}" text-anchor="middle">'
        "offered messages/s</text>",
        f'<text x="{left - 46}" y="{TOP - 16}">{escape(y_label)}</text>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        x = left + fraction * PANEL_W
        y = bottom - fraction * PANEL_H
        parts.append(
            f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{x_top * fraction:,.0f}</text>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{y_top * fraction:,.0f}</text>'
        )
    return parts


def _line(points: Sequence[tuple[float, float]], colour: str) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'


def _dots(points: Sequence[tuple[float, float, bool]], colour: str) -> list[str]:
    return [
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour if ok else "white"}" '
        f'stroke="{colour}" stroke-width="2"/>'
        for x, y, ok in points
    ]


def chat_steps_svg(steps: Sequence[StepPoint], limit_ms: float, title: str) -> str:
    """Two panels: acknowledged vs offered (dashed: everything acknowledged), and
    ack p99 vs offered (red: the limit). Hollow dots are steps that failed."""
    x_top = _nice_top(max((s.offered for s in steps), default=1.0))
    rate_top = x_top
    p99_top = _nice_top(min(max((s.p99_ms for s in steps), default=1.0), 10 * limit_ms))
    p99_top = max(p99_top, _nice_top(limit_ms * 1.2))
    bottom = TOP + PANEL_H

    def xy(left: float, x: float, y: float, y_top: float) -> tuple[float, float]:
        return left + _scale(x, x_top, PANEL_W), bottom - _scale(min(y, y_top), y_top, PANEL_H)

    acked = [(*xy(LEFT_A, s.offered, s.acked, rate_top), s.passed) for s in steps]
    p99 = [(*xy(LEFT_B, s.offered, s.p99_ms, p99_top), s.passed) for s in steps]
    limit_y = bottom - _scale(limit_ms, p99_top, PANEL_H)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" fill="{INK}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(title)}</text>',
        *_axes(LEFT_A, x_top, rate_top, "acknowledged messages/s"),
        f'<line x1="{LEFT_A}" y1="{bottom}" x2="{LEFT_A + PANEL_W}" y2="{TOP}" '
        f'stroke="{MUTED}" stroke-dasharray="4 4"/>',
        _line([(x, y) for x, y, _ in acked], ACCENT),
        *_dots(acked, ACCENT),
        *_axes(LEFT_B, x_top, p99_top, "ack p99, ms"),
        f'<line x1="{LEFT_B}" y1="{limit_y:.1f}" x2="{LEFT_B + PANEL_W}" y2="{limit_y:.1f}" '
        f'stroke="{LIMIT}" stroke-dasharray="4 4"/>',
        f'<text x="{LEFT_B + PANEL_W}" y="{limit_y - 5:.1f}" text-anchor="end" '
        f'fill="{LIMIT}">limit {limit_ms:g} ms</text>',
        _line([(x, y) for x, y, _ in p99], ACCENT),
        *_dots(p99, ACCENT),
        # A p99 beyond the panel is drawn at its top edge, with its value beside it.
        *(
            f'<text x="{x - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{s.p99_ms:,.0f} ms</text>'
            for (x, y, _), s in zip(p99, steps, strict=True)
            if s.p99_ms > p99_top
        ),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
