"""The ETNA venue's routes: ``token``, user accounts, account balance (``…/info``), positions,
equities, orders (``orders``, ``syncorders``, ``preview/orders``), and two ETNA-only control routes
under ``/__sandbox__/etna/``:

* ``POST /__sandbox__/etna/settings`` ``{"token_lifetime": 1.5, "positions_shape": "array"}``
* ``GET /__sandbox__/etna/auth`` → ``{"tokens_issued": n, "denied": n, "token_lifetime": s}``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .filters import POSITION_FIELDS
from .orders import OrderHandlers
from .paging import page
from .resources import (
    account_resource,
    balance_resource,
    equity_resource,
    position_record,
    position_resource,
    security_id,
)
from .state import EtnaState
from .wire import EtnaError, json_response

__all__ = ["wire_routes"]

_MAX_POSITIONS = 99
Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except EtnaError as exc:
            return exc.response()

    return wrapped


class _Handlers:
    def __init__(self, state: EtnaState) -> None:
        self.state = state

    async def accounts(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        who = request.path_params["user_id"]
        if who != "@me":
            if not who.isdigit():
                raise EtnaError(400)
            if int(who) != user.id:
                self.state.auth.denied += 1
                raise EtnaError(401)
        accounts = [self.state.engine.accounts[a] for a in user.accounts]
        return json_response([account_resource(a, self.state.owners(a)) for a in accounts])

    async def positions(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        held = [p for p in account.positions.values() if p.quantity != 0 and "Id" in p.extra]
        p = page(request, held, position_record, max_size=_MAX_POSITIONS, fields=POSITION_FIELDS)
        engine = self.state.engine
        items = [position_resource(account, pos, engine.price(pos.instrument.key)) for pos in p.items]
        if self.state.positions_shape == "array":
            return json_response(items)
        return json_response(p.envelope(request, items))

    async def info(self, request: Request) -> Response:
        """GET v1.0/accounts/{accountId}/info: the account's balance figures."""
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        engine = self.state.engine
        pending = sum(1 for o in engine.orders.values() if o.account_id == account.id and o.is_open)
        return json_response(balance_resource(account, engine.prices, pending))

    async def equity(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        key = request.path_params["key"]
        for ins in self.state.engine.instruments.values():
            if key.isdigit() and security_id(ins) == int(key):
                return json_response(equity_resource(ins))
            if not key.isdigit() and ins.symbol.upper() == key.upper():
                if not user.admin:  # the ticker look-up is for administrators only
                    raise EtnaError(401)
                return json_response(equity_resource(ins))
        raise EtnaError(404, {"Message": f"Security {key} is not found"})

    async def settings(self, request: Request) -> Response:
        body = await request.json()
        if "token_lifetime" in body:
            self.state.auth.token_lifetime = float(body["token_lifetime"])
        if "positions_shape" in body:
            if body["positions_shape"] not in ("paged", "array"):
                return JSONResponse({"error": "positions_shape is paged or array"}, status_code=400)
            self.state.positions_shape = body["positions_shape"]
        return JSONResponse({"ok": True})

    async def auth_stats(self, request: Request) -> Response:
        a = self.state.auth
        return JSONResponse({"tokens_issued": a.issued, "denied": a.denied, "token_lifetime": a.token_lifetime})


def wire_routes(state: EtnaState) -> list[Route]:
    """The wire API under ``/api/`` plus the ETNA control routes."""
    h, o = _Handlers(state), OrderHandlers(state)
    acct = "/api/v1.0/accounts/{account_id}"
    return [
        Route("/api/token", _guard(state.auth.token), methods=["POST"]),
        Route("/api/v1.0/users/{user_id}/accounts", _guard(h.accounts), methods=["GET"]),
        Route("/api/v1.0/equities/{key}", _guard(h.equity), methods=["GET"]),
        Route(f"{acct}/positions", _guard(h.positions), methods=["GET"]),
        Route(f"{acct}/orders", _guard(o.list), methods=["GET"]),
        Route(f"{acct}/orders", _guard(o.place), methods=["POST"]),
        Route(f"{acct}/syncorders", _guard(o.place_sync), methods=["POST"]),
        Route(f"{acct}/preview/orders", _guard(o.preview), methods=["POST"]),
        Route(f"{acct}/preview/syncorders", _guard(o.preview), methods=["POST"]),
        Route(f"{acct}/syncorders/{{order_id}}", _guard(o.cancel), methods=["DELETE"]),
        Route(f"{acct}/info", _guard(h.info), methods=["GET"]),
        Route(f"{acct}/orders/{{order_id}}", _guard(o.get), methods=["GET"]),
        Route(f"{acct}/orders/{{order_id}}", _guard(o.replace), methods=["PUT"]),
        Route(f"{acct}/orders/{{order_id}}", _guard(o.cancel), methods=["DELETE"]),
        Route("/__sandbox__/etna/settings", h.settings, methods=["POST"]),
        Route("/__sandbox__/etna/auth", h.auth_stats, methods=["GET"]),
    ]
