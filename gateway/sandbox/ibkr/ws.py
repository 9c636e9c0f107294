"""The Client Portal WebSocket, ``/v1/api/ws`` (ibkr.md §11), with the ``sor`` (live orders) topic.

On connect the server greets with ``{"topic":"system","success":<user>,...}``, an ``act`` frame (the
``iserver/accounts`` object) and ``sts`` (the session's auth status), then sends
``{"topic":"system","hb":<epoch ms>}`` every ``heartbeat`` seconds. A logged-out session gets
``sts`` with ``authenticated: false`` and the socket is closed.

Client messages: ``sor+{}`` subscribes to live orders: first one ``sor`` frame with every order in
full, then, as orders change, frames with only the changed fields plus ``acct`` and ``orderId``
(an order first seen after subscribing is sent in full). ``uor+{}`` unsubscribes; ``ech+hb`` and
``tic`` are accepted silently; anything else answers ``{"error": "Topic unknown ...", "code": 1}``.
No replay on reconnect.

Simulator choice (IBKR documents no multi-account behaviour): the stream carries the orders of every
account of the session (each item tagged with its ``acct``; group orders under the master), not only
of the selected account.

Faults for tests (``POST /__sandbox__/ibkr/ws``, see :meth:`OrderStream.control`): ``silent`` keeps
every socket open but sends nothing (no greeting, ``sor`` frame or heartbeat; client messages are
still read) until it is lifted, when the changes held back go out as usual; ``refuse`` closes the open
sockets and refuses new ones (the handshake answers HTTP 403) until it is lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..engine import SimOrder
from .state import VenueState, ib_json, read_json
from .wire import live_order

__all__ = ["OrderStream"]


def _dump(frame: Any) -> str:
    return json.dumps(frame, default=float)


class OrderStream:
    """The WebSocket endpoint of one venue; ``heartbeat`` seconds between ``hb`` frames."""

    def __init__(self, state: VenueState, heartbeat: float = 10.0, refresh: float = 0.1) -> None:
        self.s = state
        self.heartbeat = heartbeat
        self.refresh = refresh  # how often time-driven changes (PreSubmitted → Submitted) are looked for
        self.silent = False
        self.refuse = False
        self.open = 0  # sockets open now
        self.accepted = 0  # sockets accepted so far
        self.refused = 0  # handshakes refused so far

    async def control(self, request: Request) -> Response:
        """``POST /__sandbox__/ibkr/ws`` ``{"silent": bool, "refuse": bool}`` (either or both);
        ``GET`` (and every answer) shows the flags and ``open`` / ``accepted`` / ``refused`` counts."""
        if request.method == "POST":
            body = await read_json(request) or {}
            if "silent" in body:
                self.silent = bool(body["silent"])
            if "refuse" in body:
                self.refuse = bool(body["refuse"])
        return ib_json({"silent": self.silent, "refuse": self.refuse, "open": self.open,
                        "accepted": self.accepted, "refused": self.refused})

    def _item(self, order: SimOrder) -> dict[str, Any]:
        acct = self.s.master if order.account_id in self.s.groups else order.account_id
        return live_order(order, self.s.status_of(order), acct)

    def _greeting(self) -> list[dict[str, Any]]:
        s = self.s.session
        ids = [self.s.master, *self.s.sub_accounts]
        act = {"accounts": ids, "acctProps": {a: {"hasChildAccounts": a == self.s.master, "supportsCashQty": True,
                                                  "noFXConv": False, "isProp": False, "supportsFractions": False,
                                                  "allowCustomerTime": False} for a in ids},
               "aliases": {a: self.s.engine.accounts[a].name or a for a in ids}, "selectedAccount": s.selected,
               "sessionId": s.session_id, "isFT": False, "isPaper": True}
        return [{"topic": "system", "success": "sandboxuser", "isFT": False, "isPaper": True},
                {"topic": "act", "args": act}, self._sts()]

    def _sts(self) -> dict[str, Any]:
        ok = self.s.session.authenticated
        return {"topic": "sts", "args": {"connected": True, "authenticated": ok, "established": ok,
                                         "competing": False, "message": "", "fail": ""}}

    async def endpoint(self, ws: WebSocket) -> None:
        """The ``/v1/api/ws`` handler."""
        if self.refuse:
            self.refused += 1
            await ws.close(1013)  # before accept: the handshake is answered HTTP 403
            return
        await ws.accept()
        self.accepted += 1
        self.open += 1
        try:
            await self._serve(ws)
        finally:
            self.open -= 1

    async def _serve(self, ws: WebSocket) -> None:
        greeted = False
        if not self.s.session.authenticated:
            await ws.send_text(_dump(self._sts()))
            await ws.close(1000)
            return
        dirty = asyncio.Event()
        unsubscribe = self.s.engine.subscribe(lambda order: dirty.set())
        sent: dict[str, dict[str, Any]] | None = None  # orderId → last item sent; None = not subscribed
        session_id = self.s.session.session_id
        inbox: asyncio.Task[str] = asyncio.ensure_future(ws.receive_text())
        next_hb = time.monotonic() + self.heartbeat
        try:
            while True:
                if self.refuse:
                    await ws.close(1011)
                    return
                if not self.s.session.authenticated or self.s.session.session_id != session_id:
                    await ws.send_text(_dump(self._sts()))
                    await ws.close(1000)
                    return
                if not greeted and not self.silent:
                    for frame in self._greeting():
                        await ws.send_text(_dump(frame))
                    greeted = True
                    next_hb = time.monotonic() + self.heartbeat
                waiter = asyncio.ensure_future(dirty.wait())
                done, _ = await asyncio.wait({inbox, waiter}, timeout=self.refresh,
                                             return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                dirty.clear()
                if inbox in done:
                    message = inbox.result().strip()
                    inbox = asyncio.ensure_future(ws.receive_text())
                    if message.startswith("sor+") and not greeted:
                        pass  # sent before the greeting: dropped, as IBKR does
                    elif message.startswith("sor+"):
                        sent = {}
                        if not self.silent:
                            await self._send_changes(ws, sent, full=True)
                    elif message.startswith("uor+"):
                        sent = None
                    elif message not in ("ech+hb", "tic") and not self.silent:
                        await ws.send_text(_dump({"error": f"Topic unknown {message[:40]}", "code": 1}))
                if self.silent:
                    continue
                if sent is not None:
                    await self._send_changes(ws, sent)
                if time.monotonic() >= next_hb:
                    await ws.send_text(_dump({"topic": "system", "hb": int(time.time() * 1000)}))
                    next_hb = time.monotonic() + self.heartbeat
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            unsubscribe()
            inbox.cancel()
            with contextlib.suppress(BaseException):
                await inbox

    async def _send_changes(self, ws: WebSocket, sent: dict[str, dict[str, Any]], full: bool = False) -> None:
        """One ``sor`` frame with every order that is new (in full) or changed (the changed fields)."""
        args: list[dict[str, Any]] = []
        for order in sorted(self.s.engine.orders.values(), key=lambda o: int(o.id)):
            item = self._item(order)
            key = str(item["orderId"])
            before = sent.get(key)
            if before is None:
                args.append(item)
            else:
                delta = {k: v for k, v in item.items() if before.get(k) != v}
                if delta:
                    args.append({"acct": item["acct"], "orderId": item["orderId"], **delta})
            sent[key] = item
        if args or full:
            await ws.send_text(_dump({"topic": "sor", "args": args}))
