"""Numbers about processes and samples: percentiles, CPU time, resident memory."""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max by the nearest-rank method; NaN for no samples."""
    if not values:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": rank(50), "p99": rank(99), "max": ordered[-1]}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class CpuMeter:
    """CPU use of a process (pid) or of this process (pid None) over a wall-clock window."""

    pid: int | None = None
    _cpu: float = 0.0
    _wall: float = 0.0

    def _now_cpu(self) -> float:
        return own_cpu_seconds() if self.pid is None else cpu_seconds(self.pid)

    def start(self) -> CpuMeter:
        self._cpu = self._now_cpu()
        self._wall = time.monotonic()
        return self

    def percent(self) -> float:
        """Percent of one core since `start`."""
        wall = time.monotonic() - self._wall
        return 100.0 * (self._now_cpu() - self._cpu) / wall if wall > 0 else math.nan


def ms(nanoseconds: float) -> float:
    return nanoseconds / 1e6
