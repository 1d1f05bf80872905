"""Ports for servers started in another process, or stopped and restarted on the same
port: ports that no other process on the machine takes meanwhile.

Binding port 0, closing the socket and starting a server on that port races
with everything else on the machine: until the server binds it, the kernel may
hand the same port to another process's bind(0) or outgoing connection (more
likely with the tests running in parallel), and the server then fails to start
or, worse, a client reaches another process's server. So these ports come from
outside the kernel's ephemeral range, which it never hands out by itself, and
each is reserved by a lock file that this process holds until it exits: other
processes using this module (other test workers, benchmarks) skip it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

_LOCK_DIR = Path(tempfile.gettempdir()) / "hub-ports"
_LOWEST = 10_000  # below: well-known services' ports
_held: dict[int, int] = {}  # port -> descriptor of its lock file, open until exit


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _candidates() -> list[int]:
    low, high = _ephemeral_range()
    outside = [*range(_LOWEST, low), *range(high + 1, 65536)]
    return outside if len(outside) >= 1000 else list(range(_LOWEST, 65536))


def _lock(port: int) -> int | None:
    """The lock file's descriptor, locked; None when another process holds it."""
    if not _LOCK_DIR.is_dir():
        _LOCK_DIR.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            _LOCK_DIR.chmod(0o1777)  # like /tmp: every user may reserve
    try:
        fd = os.open(_LOCK_DIR / f"{port}.lock", os.O_RDONLY | os.O_CREAT, 0o444)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))  # without SO_REUSEADDR: strict
        except OSError:
            return False
    return True


def reserve_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on and no other process using this module will take."""
    candidates = _candidates()
    for _attempt in range(200):
        port = random.choice(candidates)  # noqa: S311 - not for security
        if port in _held:
            continue
        fd = _lock(port)
        if fd is None:
            continue
        if not _bindable(port, host):
            os.close(fd)
            continue
        _held[port] = fd
        return port
    raise RuntimeError(f"no free port to reserve (lock files in {_LOCK_DIR})")


def release_port(port: int) -> None:
    """Let other processes have `port` again (once its server has stopped)."""
    fd = _held.pop(port, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
