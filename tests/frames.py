"""Reading hub frames in tests the way the widget and the console do: a `batch`
frame (events published together) is its events, one after another."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from websockets.asyncio.client import ClientConnection

_pending: WeakKeyDictionary[ClientConnection, deque[dict[str, Any]]] = WeakKeyDictionary()


def events_in(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch frame's events, checked to be well-formed; any other frame alone."""
    if frame.get("type") != "batch":
        return [frame]
    events = frame["events"]
    assert isinstance(events, list) and len(events) > 1, frame  # a lone event comes bare
    assert all(isinstance(e, dict) and e.get("type") != "batch" for e in events), frame
    return events


async def next_event(ws: ClientConnection, seconds: float) -> dict[str, Any]:
    """The next event on `ws`, unpacking batch frames; fails after `seconds`."""
    pending = _pending.setdefault(ws, deque())
    if not pending:
        async with asyncio.timeout(seconds):
            pending.extend(events_in(json.loads(await ws.recv())))
    return pending.popleft()
