"""The echo of a visitor's own message, left out of the socket that sent it.

A widget socket that sends a message gets an `ack` carrying its seq and time,
which is all the widget needs to show it as sent. The `message` event the hub
publishes for the visitor's tabs would tell that socket again; its other tabs
(other sockets) still need it, so only the sender leaves it out. Matching is on
the event's JSON text, without parsing it: `"client_id":"…"` with unescaped
quotes cannot occur inside a JSON string, so only a message event carrying
that client id matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.events.bus import Event
from hub.events.json_text import compact

MESSAGE_EVENT_PREFIX = '{"type":"message"'
FROM_VISITOR = '"direction":"in"'
KEPT_MARKERS = 64  # messages sent whose echo has not come yet; older ones are forgotten


class OwnEchoes:
    """The client ids this socket sent whose `message` events it need not get."""

    def __init__(self) -> None:
        self._markers: dict[str, None] = {}

    def expect(self, client_id: str | None) -> None:
        """A message with this client id is on its way to the store."""
        if client_id is None:
            return
        self._markers[_marker(client_id)] = None
        if len(self._markers) > KEPT_MARKERS:
            del self._markers[next(iter(self._markers))]

    def forget(self, client_id: str | None) -> None:
        """It was not stored (refused or failed): no echo will come."""
        if client_id is not None:
            self._markers.pop(_marker(client_id), None)

    def without(self, group: Sequence[Event]) -> tuple[list[Event], list[str]] | None:
        """The events of `group` minus this socket's echoes, and the markers they
        matched; None when the group holds none (the common case: no copy)."""
        if not self._markers:
            return None
        kept: list[Event] = []
        matched: list[str] = []
        for event in group:
            marker = self._echo_marker(event)
            if marker is None:
                kept.append(event)
            else:
                matched.append(marker)
        return (kept, matched) if matched else None

    def delivered(self, matched: list[str]) -> None:
        """The group these markers were matched in has gone out (without them)."""
        for marker in matched:
            self._markers.pop(marker, None)

    def _echo_marker(self, event: Event) -> str | None:
        if not event.data.startswith(MESSAGE_EVENT_PREFIX) or FROM_VISITOR not in event.data:
            return None
        for marker in self._markers:
            if marker in event.data:
                return marker
        return None


def _marker(client_id: str) -> str:
    return '"client_id":' + compact(client_id)
