"""In-order text frames on one ASGI websocket, written synchronously when possible.

An ASGI `send` only suspends when the server's write buffer is full (uvicorn
waits for the transport to drain); otherwise it runs to the end without ever
yielding. `SocketSender.try_now` runs the send coroutine one step from plain
code — the bus's fan-out loop — so a frame reaches the socket without a task
switch per socket, like `websockets.broadcast`. If the send does suspend, a
task finishes it and later frames wait their turn behind it, so frames never
overtake one another.

Where the server offers it (`hub.ws_protocol.send_text_now_of`), a frame is
written by the server's own synchronous call instead, without the ASGI round
trip; when that declines (the write buffer is full, the socket is closing),
the ASGI send above takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol


class TextSocket(Protocol):
    def send_text(self, data: str) -> Coroutine[Any, Any, None]: ...


class _Resumed:
    """Awaitable that continues a coroutine already stepped once by hand.

    The step yielded `waiting_on` (the future it waits for); this hands that
    future to the task running us, then passes the task's sends and throws on,
    as `await coroutine` would have from the start.
    """

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        waiting_on = self._waiting_on
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # cancellation and the like go to the send
                try:
                    waiting_on = self._coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = self._coroutine.send(value)
                except StopIteration:
                    return


async def _finish(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _Resumed(coroutine, waiting_on)


class SocketSender:
    """Sends text frames on one websocket, in the order they are given."""

    def __init__(self, socket: TextSocket, send_now: Callable[[str], bool] | None = None) -> None:
        """`send_now(text)`: the server's synchronous write, True if it wrote."""
        self._socket = socket
        self._send_now = send_now
        self._in_flight: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    @property
    def idle(self) -> bool:
        """No send is waiting for the socket's write buffer to drain."""
        return self._in_flight is None or self._in_flight.done()

    def try_now(self, text: str) -> bool:
        """Send without awaiting; False (nothing sent) when a send is in flight
        or the socket failed — then the caller queues the frame for `send`,
        which waits its turn and raises the socket's error."""
        if not self.idle or self._error is not None:
            return False
        try:
            self._start(text)
        except Exception as exc:  # the socket is closing or gone
            self._error = exc
            return False
        return True

    async def send(self, text: str) -> None:
        """Send after any frame in flight; raises what a failed send raised."""
        await self.wait_idle()
        if self._error is not None:
            raise self._error
        self._start(text)

    async def wait_idle(self) -> None:
        while not self.idle:
            assert self._in_flight is not None
            await asyncio.wait([self._in_flight])

    def cancel(self) -> None:
        """Abandon a send in flight (the socket is being torn down)."""
        if self._in_flight is not None:
            self._in_flight.cancel()

    def _start(self, text: str) -> None:
        if self._send_now is not None and self._send_now(text):
            return
        coroutine = self._socket.send_text(text)
        try:
            waiting_on = coroutine.send(None)
        except StopIteration:
            return  # written synchronously: the common case
        except BaseException:
            coroutine.close()
            raise
        task = asyncio.ensure_future(_finish(coroutine, waiting_on))
        task.add_done_callback(self._finished)
        self._in_flight = task

    def _finished(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            error = task.exception()
            if error is not None and self._error is None:
                self._error = error
