"""Event bus: publish after commit, fan out to local subscribers.

One small backend interface (connect, disconnect, subscribe, unsubscribe,
publish, next_published), chosen by URL scheme. A single listener task per
process reads the backend and fans events out to per-subscriber bounded
queues; the backend is touched only for the first and last local subscriber of
a channel. A subscriber that falls behind is dropped (its socket closes and the
client resumes from the store) rather than buffered without end.

Events that are ready together (everything a group commit published, say) go
to each subscriber as one group, and a socket's subscriber may take a group
straight to its socket while it has nothing queued (`deliver_directly`), the
way `websockets.broadcast` writes: no task switch per socket. A group of
several events is one `batch` frame, built once for every subscriber that
gets the same events.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from hub.backends import kind_of
from hub.events.json_text import compact

log = logging.getLogger(__name__)

# Enough for a burst of activity on a busy console; a socket further behind
# than this is cheaper to resume from the store than to keep buffering.
SUBSCRIBER_QUEUE_SIZE = 1000
# Events handed on as one group (one frame per socket) at most.
GROUP_MAX = 256

# Scheme -> "module:Class", imported only when chosen.
# The bus's implementation of each backend kind (hub/backends.py).
BACKENDS = {
    "memory": "hub.events.bus:MemoryBackend",
    "redis": "hub.events.bus_redis:RedisBackend",
}


@dataclass(frozen=True)
class Event:
    channel: str
    data: str  # JSON text, serialized once per publish

    def json(self) -> Any:
        return json.loads(self.data)


class Backend(ABC):
    """Transport between processes. Implementations must be safe to reconnect."""

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def subscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, data: str) -> None: ...

    @abstractmethod
    async def next_published(self) -> Event: ...

    def published_nowait(self) -> Event | None:
        """An event already received, without waiting; None when there is none
        (backends that cannot tell say None, and their events go one by one)."""
        return None


class MemoryBackend(Backend):
    """In-process backend for the embedded default (one process)."""

    def __init__(self, url: str) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._channels: set[str] = set()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, data: str) -> None:
        if channel in self._channels:
            self._queue.put_nowait(Event(channel, data))

    async def next_published(self) -> Event:
        return await self._queue.get()

    def published_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None


class BusGap(Exception):
    """Raised by a backend's `next_published` after it lost events (a reconnect)."""


class SubscriberDropped(Exception):
    """The subscriber fell too far behind and was dropped; resume from the store."""


def batch_frame(group: Sequence[Event]) -> str:
    """The text frame for a group: the event itself, or `{"type":"batch","events":[…]}`."""
    if len(group) == 1:
        return group[0].data
    return '{"type":"batch","events":[' + ",".join(event.data for event in group) + "]}"


# Takes a group and its frame straight to a socket; False when it cannot now
# (a send in flight), and the group is queued instead.
DirectDelivery = Callable[[Sequence[Event], str], bool]


class Subscription:
    """One local subscriber's view of the bus: an async iterator of events.

    One reader at a time. Its queue exists only while events wait in it: most
    sockets take their events directly and never queue any, and an empty
    deque per idle widget socket would be most of the bus's memory per socket.
    """

    def __init__(self, channels: tuple[str, ...], max_queue: int) -> None:
        self.channels = channels
        self._max_queue = max_queue
        self._queue: deque[Event | None] | None = None  # None: nothing waiting
        self._reader: asyncio.Future[None] | None = None
        self._direct: DirectDelivery | None = None
        self.dropped = False

    def deliver_directly(self, deliver: DirectDelivery | None) -> None:
        """Offer groups to `deliver` synchronously whenever nothing is queued;
        what it declines is queued for the reader, so order is kept."""
        self._direct = deliver

    def pending(self) -> int:
        """Events queued for the reader."""
        return len(self._queue) if self._queue else 0

    def _append(self, item: Event | None) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(item)
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _drop(self) -> None:
        """Wake the reader with SubscriberDropped; its client resumes from the store."""
        if self.dropped:
            return
        self.dropped = True
        if self.pending() >= self._max_queue:
            assert self._queue is not None
            self._queue.popleft()
        self._append(None)

    def _offer(self, group: Sequence[Event], frame: str) -> None:
        if self.dropped:
            return
        if self._direct is not None and not self._queue:
            try:
                if self._direct(group, frame):
                    return
            except Exception:
                # It runs in the bus's one listener: a failing socket must not
                # stop every other subscriber's events. Its reader gets them.
                log.exception("event bus: direct delivery failed; queued instead")
                self._direct = None
        for event in group:
            if self.pending() >= self._max_queue:
                self._drop()
                return
            self._append(event)

    async def _next(self) -> Event | None:
        while not self._queue:
            if self._reader is not None:
                raise RuntimeError("a subscription has one reader at a time")
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None  # give the deque's memory back
        return item

    async def get(self) -> Event:
        event = await self._next()
        if event is None:
            raise SubscriberDropped("subscriber fell behind and was dropped")
        return event

    async def get_group(self, limit: int = GROUP_MAX) -> list[Event]:
        """The next event and every one queued behind it (up to `limit`)."""
        group = [await self.get()]
        while len(group) < limit and self._queue:
            event = self._queue.popleft()
            if event is None:
                self._queue.appendleft(None)  # the drop is raised on the next call
                break
            group.append(event)
        if not self._queue:
            self._queue = None
        return group

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()


class EventBus:
    """Publish JSON events to named channels; subscribe locally to any of them."""

    def __init__(self, url: str = "memory://") -> None:
        module_name, class_name = BACKENDS[kind_of(url)].split(":")
        backend_class = getattr(importlib.import_module(module_name), class_name)
        self.backend: Backend = backend_class(url)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.backend.connect()
        self._listener = asyncio.create_task(self._listen(), name="event-bus-listener")

    async def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        await self.backend.disconnect()

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        """Publish; never raises for a transport failure.

        Callers publish after their transaction committed, so the data is safe;
        a lost event is recovered by clients resuming from the store.
        """
        data = compact(payload)
        try:
            await self.backend.publish(channel, data)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "event bus: publishing to %s failed; clients resume from the store", channel
            )

    @asynccontextmanager
    async def subscribe(
        self, *channels: str, max_queue: int = SUBSCRIBER_QUEUE_SIZE
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels, max_queue)
        for channel in channels:
            local = self._subscribers.setdefault(channel, set())
            if not local:
                await self.backend.subscribe(channel)
            local.add(subscription)
        try:
            yield subscription
        finally:
            for channel in channels:
                remaining = self._subscribers.get(channel)
                if remaining is None:
                    continue
                remaining.discard(subscription)
                if not remaining:
                    del self._subscribers[channel]
                    await self.backend.unsubscribe(channel)

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    async def _listen(self) -> None:
        while True:
            try:
                group = await self._next_group()
            except asyncio.CancelledError:
                raise
            except BusGap:
                log.warning(
                    "event bus: gap in events; dropping %d local subscribers",
                    sum(len(s) for s in self._subscribers.values()),
                )
                for local in tuple(self._subscribers.values()):
                    for subscription in tuple(local):
                        subscription._drop()
                continue
            except Exception:
                log.exception("event bus: reading the backend failed; retrying")
                await asyncio.sleep(1)
                continue
            self._fan_out(group)

    async def _next_group(self) -> list[Event]:
        group = [await self.backend.next_published()]
        while len(group) < GROUP_MAX:
            event = self.backend.published_nowait()
            if event is None:
                break
            group.append(event)
        return group

    def _fan_out(self, group: list[Event]) -> None:
        if len(group) == 1:
            event = group[0]
            for subscription in tuple(self._subscribers.get(event.channel, ())):
                subscription._offer(group, event.data)
            return
        # Each subscriber gets the group's events on its channels, in order, as
        # one frame; subscribers with the same events share the frame's text.
        shares: dict[Subscription, list[Event]] = {}
        for event in group:
            for subscription in self._subscribers.get(event.channel, ()):
                shares.setdefault(subscription, []).append(event)
        frames: dict[tuple[int, ...], str] = {}
        for subscription, share in shares.items():
            key = tuple(map(id, share))
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = batch_frame(share)
            subscription._offer(share, frame)
