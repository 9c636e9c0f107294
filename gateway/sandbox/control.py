"""The sandbox's control plane, beside each venue's wire API under ``/__sandbox__/``.

Not part of any broker's wire format: it lets tests and demos look inside a venue and disturb it.

* ``GET /__sandbox__/stats`` → ``{"requests": {"GET /v1/positions/": 3, ...}, "total": n}``
  (every wire request counted by method and path); ``POST /__sandbox__/stats/reset`` (also empties
  the log).
* ``GET /__sandbox__/log`` → ``{"requests": [{"seq": 1, "method": "GET", "path": "/v1/...", "query": "",
  "at": 12.5}, ...]}``: the last 20 000 wire requests in the order they arrived (``at``: the venue's
  monotonic clock, seconds).
* ``POST /__sandbox__/faults`` ``{"status": 500, "delay": 2.5, "after": false,
  "path": "/v1/orders", "method": "POST", "times": 1}`` → the next matching wire requests answer
  ``status`` (with the venue's own error body) or are delayed ``delay`` seconds; with
  ``after: true`` the request is processed first and the fault applies to
  its answer (an order created whose answer never arrives). ``DELETE /__sandbox__/faults`` clears.
* ``POST /__sandbox__/price`` ``{"instrument": "<isin or symbol or key>", "price": "12.34"}``.
* ``GET /__sandbox__/state`` → accounts, positions and orders of the engine, for debugging.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .engine import Engine

__all__ = ["ControlPlane", "Fault"]

PREFIX = "/__sandbox__"


@dataclass(slots=True)
class Fault:
    status: int | None = None
    delay: float = 0.0
    after: bool = False
    path: str | None = None
    method: str | None = None
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not path.startswith(self.path))


class ControlPlane:
    """Counts and disturbs the wire requests of one venue; see the module docstring.

    Args:
        engine: the venue's engine.
        error_response: builds the venue's own error body for an injected ``status``.
    """

    def __init__(self, engine: Engine, error_response: Callable[[int], Response]) -> None:
        self.engine = engine
        self.error_response = error_response
        self.counts: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=20_000)
        self._seq = itertools.count(1)

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/stats", self._stats, methods=["GET"]),
            Route(f"{PREFIX}/stats/reset", self._reset, methods=["POST"]),
            Route(f"{PREFIX}/log", self._log, methods=["GET"]),
            Route(f"{PREFIX}/faults", self._faults, methods=["POST", "DELETE"]),
            Route(f"{PREFIX}/price", self._price, methods=["POST"]),
            Route(f"{PREFIX}/state", self._state, methods=["GET"]),
        ]

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith(PREFIX):
                await app(scope, receive, send)
                return
            method, path = scope["method"], scope["path"]
            self.counts[f"{method} {path}"] += 1
            self.log.append({"seq": next(self._seq), "method": method, "path": path,
                             "query": scope.get("query_string", b"").decode("latin-1"), "at": time.monotonic()})
            fault = self._take_fault(method, path)
            if fault is None:
                await app(scope, receive, send)
                return
            await self._apply(fault, app, scope, receive, send)

        return wrapped

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    async def _apply(self, fault: Fault, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.after:
            async def swallow(message: Any) -> None:  # run the request, lose its answer
                return None

            await app(scope, receive, swallow)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            await self.error_response(fault.status)(scope, receive, send)
            return
        if not fault.after:
            await app(scope, receive, send)
            return
        raise ConnectionAbortedError("sandbox fault: answer lost")

    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"requests": dict(self.counts), "total": sum(self.counts.values())})

    async def _reset(self, request: Request) -> Response:
        self.counts.clear()
        self.log.clear()
        return JSONResponse({"ok": True})

    async def _log(self, request: Request) -> Response:
        return JSONResponse({"requests": list(self.log)})

    async def _faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return JSONResponse({"ok": True})
        body = await request.json()
        self.faults.append(Fault(**body))
        return JSONResponse({"ok": True, "faults": len(self.faults)})

    async def _price(self, request: Request) -> Response:
        body = await request.json()
        name = str(body["instrument"])
        keys = [k for k, ins in self.engine.instruments.items() if name in (k, ins.isin, ins.symbol)]
        if not keys:
            return JSONResponse({"error": f"unknown instrument {name}"}, status_code=404)
        for key in keys:
            self.engine.set_price(key, Decimal(str(body["price"])))
        return JSONResponse({"ok": True, "instruments": keys})

    async def _state(self, request: Request) -> Response:
        e = self.engine
        state = {
            "prices": {k: str(v) for k, v in e.prices.items()},
            "accounts": {
                a.id: {
                    "cash": str(a.cash),
                    "positions": [
                        {"instrument": p.instrument.key, "isin": p.instrument.isin, "product": p.product,
                         "quantity": str(p.quantity), "average_price": str(p.average_price)}
                        for p in a.positions.values()
                    ],
                }
                for a in e.accounts.values()
            },
            "orders": [
                {"id": o.id, "account": o.account_id, "instrument": o.instrument.key, "side": o.side,
                 "quantity": str(o.quantity), "filled": str(o.filled_quantity), "status": o.status.value,
                 "client_order_id": o.client_order_id, "allocation": {k: str(v) for k, v in (o.allocation or {}).items()}}
                for o in e.orders.values()
            ],
        }
        return Response(json.dumps(state), media_type="application/json")


