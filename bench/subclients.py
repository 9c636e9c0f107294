"""WebSocket subscribers spread over several client processes, for ``bench/subscribers.py``.

Each client process (``multiprocessing``, spawned) opens its share of the sockets on its own event
loop (uvloop) as bare asyncio protocols speaking RFC 6455 themselves (the handshake with the headers
aiohttp sends, so the server holds per socket what it holds for aiohttp; unmasked server frames parsed
straight from the received bytes; pings answered): per message about half the CPU of aiohttp's reader,
which matters because the clients share the machine's cores with the gateway. It parses leanly: it finds
the order id in the raw text of each message (``"order":{"id":"…"``), with the garbage collector off
once its sockets are open (so that no collection pause of the client's is timed), and keeps, per order
id, the ``time.monotonic()`` of each socket's first message naming it (taken when the read that
completed the message returned). CLOCK_MONOTONIC is system-wide on Linux, so those times compare
with the benchmark process's own ``time.monotonic()``. No message is decoded as JSON.

Two kinds of socket, so that the gateway and the bare broadcast are received the same way:

- ``graphql``: graphql-transport-ws: ``connection_init``, ``connection_ack``, then one ``subscribe``
  with the given payload; pings are answered with a pong.
- ``bare``: a plain WebSocket that only receives.

The parent talks to each process over a ``multiprocessing`` pipe: ``ready`` after it has opened its
sockets, ``collect`` (receipt times of one order id, waiting until every socket has it or a timeout),
``close``.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import importlib.metadata
import multiprocessing
import os
import sys
import time
from typing import Any

_ORDER = '"order":{"id":"'


def _serve(conn: Any, url: str, mode: str, count: int, subscribe: str | None) -> None:
    """The client process: opens ``count`` sockets to ``url`` and answers the parent's commands."""
    import uvloop

    uvloop.run(_client(conn, url, mode, count, subscribe))


_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_USER_AGENT = f"Python/{sys.version_info[0]}.{sys.version_info[1]} aiohttp/{importlib.metadata.version('aiohttp')}"


def _masked(opcode: int, payload: bytes) -> bytes:
    """One client frame (FIN set, masked, as RFC 6455 requires of a client)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    return header + mask + (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class _Socket(asyncio.Protocol):
    """A WebSocket client on a bare asyncio protocol: the RFC 6455 handshake (the headers aiohttp
    sends, so that the server holds what it holds for a usual client), then unmasked server frames
    parsed from the received bytes; pings are answered, each text message is handed to
    ``on_text(self, text, at)`` with ``at`` the ``time.monotonic()`` of the read that completed it."""

    def __init__(self, host: str, path: str, protocol: str | None,
                 on_text: Any) -> None:
        self.key = base64.b64encode(os.urandom(16))
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
                        + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "")
                        + "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
                        f"User-Agent: {_USER_AGENT}\r\n\r\n").encode()
        self.on_text = on_text
        self.buf = b""
        self.fragments: list[bytes] = []
        self.upgraded = asyncio.get_running_loop().create_future()
        self.transport: Any = None
        self.last = ""  # the order id of the last message naming one

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def send_text(self, text: str) -> None:
        self.transport.write(_masked(0x1, text.encode()))

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_masked(0x8, (1000).to_bytes(2, "big")))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        data = self.buf + data if self.buf else data
        if not self.upgraded.done():
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head, data = data[:end].decode("latin-1"), data[end + 4:]
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest()).decode()
            if not head.startswith("HTTP/1.1 101") or accept not in head:
                self.upgraded.set_exception(ConnectionError(f"handshake refused: {head.splitlines()[0]}"))
                self.transport.close()
                return
            self.upgraded.set_result(None)
        pos, n = 0, len(data)
        while n - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            length, start = b1 & 0x7F, pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length, start = int.from_bytes(data[pos + 2:pos + 4], "big"), pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, start = int.from_bytes(data[pos + 2:pos + 10], "big"), pos + 10
            if n - start < length:
                break
            payload = data[start:start + length]
            pos = start + length
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                self.transport.write(_masked(0xA, payload))
            elif opcode == 0x8:  # close: answer it
                self.close()
            elif opcode in (0x0, 0x1):  # text, or its continuation
                if not b0 & 0x80:
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload = b"".join([*self.fragments, payload])
                    self.fragments = []
                self.on_text(self, payload.decode(), at)
        self.buf = data[pos:]


async def _client(conn: Any, url: str, mode: str, count: int, subscribe: str | None) -> None:
    arrivals: dict[str, list[float]] = {}
    samples: dict[str, str] = {}  # the first message naming each order id, as received
    complete: dict[str, asyncio.Event] = {}
    acks: dict[_Socket, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()
    address = url.split("//", 1)[1]
    host, _, path = address.partition("/")
    hostname, _, port = host.partition(":")

    def arrived(order_id: str, at: float, data: str) -> None:
        times = arrivals.setdefault(order_id, [])
        if not times:
            samples[order_id] = data
        times.append(at)
        if len(times) >= count:
            complete.setdefault(order_id, asyncio.Event()).set()

    def on_text(sock: _Socket, data: str, at: float) -> None:
        i = data.find(_ORDER)
        if i < 0:
            waiting = acks.pop(sock, None)
            if waiting is not None:
                if "connection_ack" in data:
                    waiting.set_result(None)
                else:
                    waiting.set_exception(RuntimeError(f"no connection_ack: {data[:200]}"))
            elif '"ping"' in data:
                sock.send_text('{"type":"pong"}')
            return
        start = i + len(_ORDER)
        order_id = data[start:data.find('"', start)]
        if order_id != sock.last:  # the order's first event on this socket (later ones name it again)
            sock.last = order_id
            arrived(order_id, at, data)

    async def open_one() -> _Socket:
        protocol = "graphql-transport-ws" if mode == "graphql" else None
        _, sock = await loop.create_connection(lambda: _Socket(host, "/" + path, protocol, on_text), hostname,
                                               int(port))
        await asyncio.wait_for(sock.upgraded, 30)
        if mode == "graphql":
            acks[sock] = loop.create_future()
            sock.send_text('{"type":"connection_init"}')
            await asyncio.wait_for(acks[sock], 30)
            sock.send_text(subscribe)
        return sock

    sockets: list[_Socket] = []
    try:
        for start in range(0, count, 50):
            sockets += await asyncio.gather(*(open_one() for _ in range(start, min(start + 50, count))))
        gc.collect()
        gc.freeze()  # the sockets' objects are long-lived: no full collection walks them during a round
        gc.disable()  # nor any pause of the client's own making while receipts are timed
        conn.send(("ready", len(sockets)))
    except Exception as exc:  # reported to the parent, which stops the run
        conn.send(("error", f"{type(exc).__name__}: {exc} after {len(sockets)} sockets"))
        return

    while True:
        command = await asyncio.to_thread(conn.recv)
        if command[0] == "collect":
            _, order_id, timeout = command
            event = complete.setdefault(order_id, asyncio.Event())
            if len(arrivals.get(order_id, ())) < count:
                try:
                    await asyncio.wait_for(event.wait(), timeout)
                except TimeoutError:
                    pass
            conn.send(("times", arrivals.pop(order_id, []), samples.pop(order_id, None)))
            complete.pop(order_id, None)
        elif command[0] == "close":
            for sock in sockets:
                sock.close()
            await asyncio.sleep(0.5)
            conn.send(("closed", len(sockets)))
            return


class ClientPool:
    """``processes`` client processes holding ``total`` sockets to ``url`` between them (as even shares)."""

    def __init__(self, url: str, mode: str, total: int, processes: int, subscribe: str | None = None) -> None:
        self.url, self.mode, self.total, self.subscribe = url, mode, total, subscribe
        shares = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
        self.shares = [s for s in shares if s]
        self.conns: list[Any] = []
        self.procs: list[Any] = []

    async def start(self) -> None:
        """Start the processes and wait until each has opened its sockets (RuntimeError if one failed)."""
        ctx = multiprocessing.get_context("spawn")
        for share in self.shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, self.url, self.mode, share, self.subscribe), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        replies = await asyncio.gather(*(asyncio.to_thread(c.recv) for c in self.conns))
        errors = [r[1] for r in replies if r[0] != "ready"]
        if errors:
            raise RuntimeError("client processes failed: " + "; ".join(errors))

    async def collect(self, order_id: str, wait: float = 30.0) -> tuple[list[float], str | None]:
        """Each socket's first receipt (``time.monotonic()``) of a message naming ``order_id``, and the
        text of one such message (None if no socket received one)."""

        async def ask(conn: Any) -> tuple[list[float], str | None]:
            conn.send(("collect", order_id, wait))
            _, times, sample = await asyncio.to_thread(conn.recv)
            return times, sample

        replies = await asyncio.gather(*(ask(c) for c in self.conns))
        return [t for times, _ in replies for t in times], next((s for _, s in replies if s), None)

    async def close(self) -> None:
        async def stop(conn: Any) -> None:
            conn.send(("close",))
            await asyncio.to_thread(conn.recv)

        try:
            await asyncio.wait_for(asyncio.gather(*(stop(c) for c in self.conns)), 60)
        finally:
            for proc in self.procs:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
