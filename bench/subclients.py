"""WebSocket subscribers spread over several client processes, for ``bench/subscribers.py``.

Each client process (``multiprocessing``, spawned) opens its share of the sockets on its own event
loop (uvloop) with aiohttp's compiled WebSocket reader, and parses leanly: it finds the order id in the
raw text of each message (``"order":{"id":"…"``), with the garbage collector off once its sockets are
open (so that no collection pause of the client's is timed), and keeps, per order id, the ``time.monotonic()`` of
each socket's first message naming it. CLOCK_MONOTONIC is system-wide on Linux, so those times compare
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
import gc
import multiprocessing
import time
from typing import Any

_ORDER = '"order":{"id":"'


def _serve(conn: Any, url: str, mode: str, count: int, subscribe: str | None) -> None:
    """The client process: opens ``count`` sockets to ``url`` and answers the parent's commands."""
    import uvloop

    uvloop.run(_client(conn, url, mode, count, subscribe))


async def _client(conn: Any, url: str, mode: str, count: int, subscribe: str | None) -> None:
    import aiohttp

    arrivals: dict[str, list[float]] = {}
    samples: dict[str, str] = {}  # the first message naming each order id, as received
    complete: dict[str, asyncio.Event] = {}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))

    def arrived(order_id: str, at: float, data: str) -> None:
        times = arrivals.setdefault(order_id, [])
        if not times:
            samples[order_id] = data
        times.append(at)
        if len(times) >= count:
            complete.setdefault(order_id, asyncio.Event()).set()

    async def read(ws: Any) -> None:
        last = ""
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            at = time.monotonic()
            data = msg.data
            i = data.find(_ORDER)
            if i < 0:
                if '"ping"' in data:
                    await ws.send_str('{"type":"pong"}')
                continue
            start = i + len(_ORDER)
            order_id = data[start:data.find('"', start)]
            if order_id != last:  # the order's first event on this socket (later ones name it again)
                last = order_id
                arrived(order_id, at, data)

    async def open_one() -> Any:
        if mode == "graphql":
            ws = await session.ws_connect(url, protocols=("graphql-transport-ws",), max_msg_size=0,
                                          autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=2))
            await ws.send_str('{"type":"connection_init"}')
            ack = await asyncio.wait_for(ws.receive_str(), 30)
            if "connection_ack" not in ack:
                raise RuntimeError(f"no connection_ack: {ack[:200]}")
            await ws.send_str(subscribe)
        else:
            ws = await session.ws_connect(url, max_msg_size=0, autoping=True,
                                          timeout=aiohttp.ClientWSTimeout(ws_close=2))
        return ws

    sockets: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    try:
        for start in range(0, count, 50):
            batch = await asyncio.gather(*(open_one() for _ in range(start, min(start + 50, count))))
            sockets += batch
            readers += [asyncio.create_task(read(ws)) for ws in batch]
        gc.collect()
        gc.freeze()  # the sockets' objects are long-lived: no full collection walks them during a round
        gc.disable()  # nor any pause of the client's own making while receipts are timed
        conn.send(("ready", len(sockets)))
    except Exception as exc:  # reported to the parent, which stops the run
        conn.send(("error", f"{type(exc).__name__}: {exc} after {len(sockets)} sockets"))
        await session.close()
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
            for task in readers:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            await session.close()
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
