"""Redis pub/sub backend for the event bus (several hub processes, one Redis).

One pub/sub connection per process carries every channel this process has
local subscribers for. When that connection is lost the backend logs it,
reconnects with backoff and subscribes again; events published meanwhile are
gone, so it reports a `BusGap` and the bus drops its local subscribers, whose
clients reconnect and resume from the store by `seq`.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub.backends import split_redis_url
from hub.events.bus import Backend, BusGap, Event

log = logging.getLogger(__name__)

# Channels are namespaced so that several hubs (or test runs) can share one Redis.
# Reconnect quickly after a blip, but do not hammer a Redis that is down.
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 5.0
# Redis confirms a SUBSCRIBE in well under a millisecond on a healthy link.
SUBSCRIBE_TIMEOUT = 5.0

_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


def _raise_if_cancelled() -> None:
    """Honour a cancellation that redis-py swallowed while opening its connection.

    Seen with redis-py 8 on Python 3.11: a task cancelled before its first
    SUBSCRIBE ran went on as if nothing happened, and could never be stopped.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# Connections for the publisher's pipelines and the subscription (a pipeline
# holds one while in flight), and how long a publish waits for one when all
# are busy before it fails (and is logged).
PUBLISH_CONNECTIONS = 64
PUBLISH_WAIT_SECONDS = 5.0
# At most this many PUBLISH commands in one pipeline.
PUBLISH_BATCH = 500


def _fail(batch: list[tuple[str, str, asyncio.Future[None]]], error: BaseException) -> None:
    for _, _, sent in batch:
        if not sent.done():
            sent.set_exception(error)


class RedisBackend(Backend):
    def __init__(self, url: str) -> None:
        self._url, self.prefix = split_redis_url(url)
        self._client: redis.Redis | None = None
        self._pubsub: redis.client.PubSub | None = None
        self._channels: set[str] = set()
        self._has_channels = asyncio.Event()
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._outbox: list[tuple[str, str, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.pipelines_sent = 0

    async def connect(self) -> None:
        # No silent retries: a lost connection must surface so the gap is reported.
        # A blocking pool: a burst of publishes waits for a free connection
        # instead of failing with "Too many connections" (redis-py's default pool).
        pool = redis.BlockingConnectionPool.from_url(
            self._url,
            retry=Retry(NoBackoff(), 0),
            max_connections=PUBLISH_CONNECTIONS,
            timeout=PUBLISH_WAIT_SECONDS,
        )
        self._client = redis.Redis.from_pool(pool)
        await self._client.ping()
        self._pubsub = self._client.pubsub()

    async def disconnect(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        _fail(self._outbox, RedisConnectionError("the bus disconnected before sending"))
        self._outbox.clear()
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def subscribe(self, channel: str) -> None:
        """Returns once Redis confirmed: from then on no event on `channel` is missed."""
        self._channels.add(channel)
        name = self.prefix + channel
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(name, []).append(confirmed)
        try:
            await self._require_pubsub().subscribe(name)
        except _LOST:
            # The listener reconnects and subscribes to every channel again.
            log.warning("redis bus: subscribe to %s deferred until Redis is back", channel)
            self._confirmations[name].remove(confirmed)
            return
        finally:
            # Only now: the listener must not read before the connection exists.
            self._has_channels.set()
        _raise_if_cancelled()
        # The listener reads the confirmation and resolves the future. (Not
        # asyncio.wait_for: on Python 3.11 it can swallow a cancellation that
        # arrives as the future completes, leaving the caller uncancellable.)
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            await confirmed

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        if not self._channels:
            self._has_channels.clear()
        try:
            await self._require_pubsub().unsubscribe(self.prefix + channel)
        except _LOST:
            pass

    async def publish(self, channel: str, data: str) -> None:
        """Returns once Redis has it. Publishes go out in order, one pipeline
        (one write, one read of the replies) for whatever was published while
        the last pipeline was in flight, instead of a round trip each."""
        self._require_client()
        sent = asyncio.get_running_loop().create_future()
        self._outbox.append((self.prefix + channel, data, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_outbox(), name="redis-bus-publisher")
        await sent

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch = self._outbox[:PUBLISH_BATCH]
            del self._outbox[:PUBLISH_BATCH]
            try:
                async with self._require_client().pipeline(transaction=False) as pipe:
                    for name, data, _ in batch:
                        pipe.publish(name, data)
                    await pipe.execute()
            except asyncio.CancelledError:
                _fail(batch, RedisConnectionError("the bus disconnected before sending"))
                raise
            except Exception as exc:  # each publisher of the batch hears of it
                _fail(batch, exc)
            else:
                for _, _, sent in batch:
                    if not sent.done():  # its publisher may have given up
                        sent.set_result(None)
            self.pipelines_sent += 1

    async def next_published(self) -> Event:
        while True:
            await self._has_channels.wait()
            try:
                message = await self._require_pubsub().get_message(timeout=None)
            except _LOST as exc:
                log.warning("redis bus: connection lost (%s); reconnecting", exc)
                await self._reconnect()
                raise BusGap("events may have been missed while Redis was unreachable") from exc
            if message is None:
                continue
            if message["type"] == "subscribe":
                for confirmed in self._confirmations.pop(message["channel"].decode(), ()):
                    if not confirmed.done():
                        confirmed.set_result(None)
                continue
            if message["type"] != "message":
                continue
            channel = message["channel"].decode()[len(self.prefix) :]
            data = message["data"]
            return Event(channel, data.decode() if isinstance(data, bytes) else data)

    def _require_pubsub(self) -> redis.client.PubSub:
        if self._pubsub is None:
            raise RuntimeError("RedisBackend used before connect(); call EventBus.connect()")
        return self._pubsub

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while True:
            try:
                if self._pubsub is not None:
                    await self._pubsub.aclose()
                self._pubsub = self._require_client().pubsub()
                if self._channels:
                    await self._pubsub.subscribe(*(self.prefix + c for c in self._channels))
                log.info("redis bus: reconnected, %d channels", len(self._channels))
                return
            except _LOST as exc:
                log.warning("redis bus: reconnect failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def _require_client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("RedisBackend used before connect(); call EventBus.connect()")
        return self._client
