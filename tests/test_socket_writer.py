"""gateway.events.fanout.SocketWriter on its own: in-order writes, no task while the socket takes
messages, a backlog only behind a write that waits, the limit, cancellation of a waiting write.
(The same over real WebSockets: tests/test_subscription_fanout.py.) And the WebSocket adapter that keeps
no received message while a socket is quiet."""

from __future__ import annotations

import asyncio

from gateway.events.fanout import SLOW_CONSUMER_CODE, SocketWriter


class FakeSocket:
    """``send_text`` writes at once while ``open`` is set, and waits for it otherwise (a full transport)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: list[tuple[int, str]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.waits = 0
        self.cancelled = 0

    async def send_text(self, text: str) -> None:
        if not self.open.is_set():
            self.waits += 1
            try:
                await self.open.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


async def test_an_idle_socket_is_written_at_once_without_a_task() -> None:
    sock = FakeSocket()
    writer = SocketWriter(sock.send_text, sock.close, limit=3)
    for n in range(5):
        assert writer.push(f"m{n}")
        assert sock.sent[-1] == f"m{n}"  # written in the call, nothing queued
        assert writer.task is None and writer.backlog is None


async def test_messages_behind_a_waiting_write_follow_it_in_order_then_the_socket_is_idle_again() -> None:
    sock = FakeSocket()
    writer = SocketWriter(sock.send_text, sock.close, limit=3)
    sock.open.clear()
    assert writer.push("a")  # this write waits
    assert writer.task is not None and sock.sent == []
    assert writer.push("b") and writer.push("c")
    await asyncio.sleep(0)
    assert sock.sent == []
    sock.open.set()
    await asyncio.wait_for(asyncio.shield(writer.task), 2)
    assert sock.sent == ["a", "b", "c"]
    assert writer.task is None and writer.backlog is None
    assert writer.push("d") and sock.sent[-1] == "d"


async def test_one_message_past_the_limit_closes_the_socket_and_cancels_the_waiting_write() -> None:
    sock = FakeSocket()
    ended: list[bool] = []
    writer = SocketWriter(sock.send_text, sock.close, limit=2, on_overflow=lambda: ended.append(True))
    sock.open.clear()
    assert writer.push("a")  # waits in the transport
    await asyncio.sleep(0)
    assert writer.push("b") and writer.push("c")  # two waiting: the limit
    assert not writer.push("d")
    assert ended == [True] and writer.closed and "slow consumer" in (writer.reason or "")
    for _ in range(5):
        await asyncio.sleep(0)
    assert sock.cancelled == 1 and sock.sent == []
    assert sock.closed and sock.closed[0][0] == SLOW_CONSUMER_CODE
    assert not writer.push("e")


async def test_a_write_that_fails_stops_the_writer() -> None:
    async def broken(text: str) -> None:
        raise OSError("gone")

    async def close(code: int, reason: str) -> None:
        pass

    writer = SocketWriter(broken, close, limit=2)
    assert not writer.push("a")
    assert writer.closed and writer.task is None


async def test_the_websocket_adapter_keeps_no_received_text_while_it_waits() -> None:
    """A quiet subscriber's socket must not hold its last message (a subscribe carries its document)."""
    import json

    from starlette.websockets import WebSocketState

    from gateway.strict_view import LeanWebSocketAdapter

    document = "subscription S { orderStatusChanged { eventId } }" + " " * 500
    texts = [json.dumps({"type": "subscribe", "id": "1", "payload": {"query": document}})]
    more = asyncio.Event()

    class Ws:
        application_state = WebSocketState.CONNECTED

        async def receive_text(self) -> str:
            if texts:
                return texts.pop()
            await more.wait()
            return "{}"

    class View:
        decode_json = staticmethod(json.loads)

    adapter = LeanWebSocketAdapter(View(), None, Ws())  # type: ignore[arg-type]
    messages = adapter.iter_json()
    assert (await messages.__anext__())["payload"]["query"] == document
    waiting = asyncio.ensure_future(messages.__anext__())
    await asyncio.sleep(0)
    held = [v for v in messages.ag_frame.f_locals.values() if isinstance(v, str) and "orderStatusChanged" in v]
    assert held == []
    more.set()
    assert await waiting == {}
    await messages.aclose()
