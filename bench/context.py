"""What every benchmark gets: its sizes, a scratch directory, progress and results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.report import Progress, Results


@dataclass
class Context:
    quick: bool
    work: Path
    progress: Progress
    results: Results
