"""SocketSender: frames in order, written without awaiting while the socket keeps up.

The socket here is a stand-in with the one behaviour that matters, an ASGI
send that suspends while the write buffer is full; the real sockets are
covered by the console and widget socket tests.
"""

from __future__ import annotations

import asyncio

import pytest

from channels.websocket.sender import SocketSender

WAIT = 5.0


class BufferedSocket:
    """Writes at once unless `full`; then each send waits until `drain()`."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.full = False
        self._drained = asyncio.Event()
        self.error: Exception | None = None

    async def send_text(self, data: str) -> None:
        if self.full:
            self._drained.clear()
            await self._drained.wait()
        if self.error is not None:
            raise self.error
        self.written.append(data)

    def drain(self) -> None:
        self.full = False
        self._drained.set()


async def test_a_send_that_need_not_wait_is_written_before_try_now_returns():
    socket = BufferedSocket()
    sender = SocketSender(socket)
    assert sender.try_now("one")
    assert socket.written == ["one"]  # no await in between: written synchronously
    assert sender.idle


async def test_a_send_that_waits_finishes_later_and_nothing_overtakes_it():
    socket = BufferedSocket()
    sender = SocketSender(socket)
    socket.full = True
    assert sender.try_now("first")  # taken: it finishes in the background
    assert not sender.idle
    assert not sender.try_now("second")  # the caller must queue it
    later = asyncio.create_task(sender.send("third"))
    await asyncio.sleep(0)
    assert socket.written == []
    socket.drain()
    async with asyncio.timeout(WAIT):
        await later
    assert socket.written == ["first", "third"]
    assert sender.idle


async def test_a_failed_background_send_is_raised_by_the_next_send():
    socket = BufferedSocket()
    sender = SocketSender(socket)
    socket.full = True
    assert sender.try_now("lost")
    socket.error = ConnectionResetError("gone")
    socket.drain()
    async with asyncio.timeout(WAIT):
        await sender.wait_idle()
    assert not sender.try_now("next")
    with pytest.raises(ConnectionResetError):
        await sender.send("next")


async def test_a_send_that_fails_at_once_is_declined_then_raised_by_send():
    socket = BufferedSocket()
    socket.error = ConnectionResetError("gone")
    sender = SocketSender(socket)
    assert not sender.try_now("x")
    with pytest.raises(ConnectionResetError):
        await sender.send("x")
    assert socket.written == []


async def test_cancel_abandons_a_waiting_send():
    socket = BufferedSocket()
    sender = SocketSender(socket)
    socket.full = True
    assert sender.try_now("stuck")
    sender.cancel()
    async with asyncio.timeout(WAIT):
        await sender.wait_idle()
    socket.drain()
    await asyncio.sleep(0)
    assert socket.written == []


async def test_the_servers_own_write_is_used_while_it_accepts_and_asgi_when_it_declines():
    socket = BufferedSocket()
    direct: list[str] = []
    accepting = [True]

    def send_now(text: str) -> bool:
        if accepting[0]:
            direct.append(text)
        return accepting[0]

    sender = SocketSender(socket, send_now)
    assert sender.try_now("one")
    assert (direct, socket.written) == (["one"], [])
    accepting[0] = False  # the write buffer filled up, say
    socket.full = True
    assert sender.try_now("two")  # through ASGI, which waits for the drain
    assert not sender.idle
    accepting[0] = True
    later = asyncio.create_task(sender.send("three"))
    await asyncio.sleep(0)
    assert direct == ["one"]  # "three" waits behind "two"
    socket.drain()
    async with asyncio.timeout(WAIT):
        await later
    assert socket.written == ["two"] and direct == ["one", "three"]
