"""The lemon.markets paper venue: Trading API v1 under ``/v1/`` (shared/brokers/lemon.md).

Endpoints: ``GET/POST orders``, ``GET/DELETE orders/{id}``, ``POST orders/{id}/activate``,
``GET positions``, ``GET account``; each with and without a trailing slash, as the SDK's ``next``
links carry one. Quirks reproduced: the two-step placement, integer money in 1/10 000 EUR, types
inferred from prices, ``expires_at`` rules, idempotency violations, the paper quota of 1000 orders a
day, the 25k EUR limit, ``canceled`` with ``cancelled_at``, 429 with ``Retry-After``.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..control import ControlPlane
from ..engine import Engine, SimAccount, SimOrder, SimStatus
from . import wire

__all__ = ["LemonSettings", "LemonUser", "build_app"]

TOTAL_LIMIT = Decimal(25000)
_DURATION = re.compile(r"^P?(\d+)D$", re.IGNORECASE)


@dataclass(slots=True)
class LemonUser:
    """An API key and the paper account it opens."""

    api_key: str
    account_id: str
    key_id: str
    profile: dict[str, Any]
    idempotency: dict[str, datetime] = field(default_factory=dict)
    created_today: list[date] = field(default_factory=list)
    window: deque[float] = field(default_factory=deque)


@dataclass(slots=True)
class LemonSettings:
    """Venue limits: ``rate_limit`` requests per ``rate_window`` seconds per key (lemon: bursts to
    300 a minute), ``daily_order_quota`` created orders a day (paper: 1000)."""

    rate_limit: int = 300
    rate_window: float = 60.0
    daily_order_quota: int = 1000


Handler = Callable[["LemonVenue", Request, LemonUser], Awaitable[Response]]


def _authenticated(handler: Handler) -> Callable[[LemonVenue, Request], Awaitable[Response]]:
    """Bearer authentication and the per-key rate limit before ``handler`` runs."""

    @functools.wraps(handler)
    async def endpoint(self: LemonVenue, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        return await handler(self, request, user)

    return endpoint


class LemonVenue:
    def __init__(self, engine: Engine, users: list[LemonUser], settings: LemonSettings) -> None:
        self.engine = engine
        self.users = {u.api_key: u for u in users}
        self.settings = settings

    # -- plumbing -------------------------------------------------------------------------
    def _user(self, request: Request) -> LemonUser | Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        user = self.users.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return wire.error("unauthorized")
        now = time.monotonic()
        while user.window and now - user.window[0] > self.settings.rate_window:
            user.window.popleft()
        if len(user.window) >= self.settings.rate_limit:
            retry = max(1, math.ceil(self.settings.rate_window - (now - user.window[0])))
            return wire.error("rate_limit_exceeded", headers={"Retry-After": str(retry)})
        user.window.append(now)
        return user

    def _account(self, user: LemonUser) -> SimAccount:
        return self.engine.accounts[user.account_id]

    def _page(self, request: Request, items: list[dict[str, Any]], resource: str) -> Response:
        try:
            limit = int(request.query_params.get("limit", "10"))
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            return wire.error("invalid_query", "limit and page must be integers")
        if not 1 <= limit <= 100 or page < 1:
            return wire.error("invalid_query", "limit must be 1..100 and page >= 1")
        total = len(items)
        pages = max(1, math.ceil(total / limit))
        chunk = items[(page - 1) * limit: page * limit]
        base = f"{request.url.scheme}://{request.url.netloc}/v1/{resource}/"
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "page")]

        def link(p: int) -> str:
            return base + "?" + urlencode([*params, ("limit", str(limit)), ("page", str(p))])

        return wire.envelope(chunk, previous=link(page - 1) if page > 1 else None,
                             next=link(page + 1) if page < pages else None, total=total, page=page, pages=pages)

    def _find(self, user: LemonUser, order_id: str) -> SimOrder | None:
        order = self.engine.orders.get(order_id)
        if order is None or order.account_id != user.account_id:
            return None
        return order

    def _order(self, order: SimOrder, *, created: bool = False) -> dict[str, Any]:
        return wire.order_json(order, self.engine.price(order.instrument.key), created=created)

    # -- orders ---------------------------------------------------------------------------
    @_authenticated
    async def create_order(self, request: Request, user: LemonUser) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return wire.error("invalid_query", "body is not JSON")
        if not isinstance(body, dict):
            return wire.error("invalid_query", "body must be an object")
        problem = _check_body(body)
        if problem:
            return wire.error("invalid_query", problem)
        instrument = next((i for i in self.engine.instruments.values() if i.isin == body["isin"]), None)
        if instrument is None:
            return wire.error("instrument_not_found", f"no instrument with isin {body['isin']}")
        stop = _price(body.get("stop_price"))
        limit = _price(body.get("limit_price"))
        expires = _expiry(body.get("expires_at"), required=stop is not None or limit is not None)
        if isinstance(expires, Response):
            return expires
        key = body.get("idempotency")
        now = datetime.now(UTC)
        if key is not None:
            seen = user.idempotency.get(key)
            if seen is not None and now - seen < timedelta(days=7):
                return wire.error("order_idempotency_violation")
        user.created_today = [d for d in user.created_today if d == now.date()]
        if len(user.created_today) >= self.settings.daily_order_quota:
            return wire.error("order_limit_exceeded")
        quantity = Decimal(body["quantity"])
        price = limit if limit is not None else self.engine.price(instrument.key)
        if body["side"] == "buy" and price * quantity > TOTAL_LIMIT:
            return wire.error("order_total_price_limit_exceeded")
        order = SimOrder(
            id=_order_id(self.engine), account_id=user.account_id, instrument=instrument, side=body["side"],
            quantity=quantity, limit_price=limit, stop_price=stop, time_in_force="gtd", expires_at=expires,
            client_order_id=key,
            extra={"venue": body.get("venue", "xmun"), "notes": body.get("notes"), "key_id": user.key_id},
        )
        if key is not None:
            user.idempotency[key] = now
        user.created_today.append(now.date())
        self.engine.add_order(order)
        return wire.envelope(self._order(order, created=True))

    @_authenticated
    async def activate(self, request: Request, user: LemonUser) -> Response:
        order = self._find(user, request.path_params["order_id"])
        if order is None:
            return wire.error("order_not_found")
        if order.status is not SimStatus.INACTIVE:
            return wire.error("order_not_inactive")
        refusal = self._activation_refusal(user, order)
        if refusal is not None:
            # validation or limits failing at activation reject the order (lemon.md §8)
            self.engine.reject(order, refusal)
            return wire.error(refusal)
        self.engine.activate(order)
        return wire.envelope()

    def _activation_refusal(self, user: LemonUser, order: SimOrder) -> str | None:
        """The error code that refuses activating ``order``, or ``None``."""
        account = self._account(user)
        price = order.limit_price if order.limit_price is not None else self.engine.price(order.instrument.key)
        if order.side == "buy":
            if price * order.quantity > TOTAL_LIMIT:
                return "order_total_price_limit_exceeded"
            if price * order.quantity + Decimal(wire.CHARGE) / 10000 > self.cash_to_invest(account):
                return "account_insufficient_funds"
            return None
        held = sum((p.quantity for p in account.positions.values() if p.instrument.isin == order.instrument.isin),
                   Decimal(0))
        reserved = sum((o.remaining for o in self._open(account) if o.side == "sell"
                        and o.instrument.isin == order.instrument.isin and o.status is not SimStatus.INACTIVE),
                       Decimal(0))
        return "insufficient_holdings" if order.quantity > held - reserved else None

    @_authenticated
    async def list_orders(self, request: Request, user: LemonUser) -> Response:
        q = request.query_params
        try:
            start = _when(q.get("from"))
            end = _when(q.get("to"), end_of_day=True)
        except ValueError as exc:
            return wire.error("invalid_query", str(exc))
        statuses = set(q.getlist("status"))
        words = {**{w: s for s, w in wire.STATUS_WORDS.items()}}
        unknown = statuses - set(words) - {"active", "cancelling", "cancelled"}
        if unknown:
            return wire.error("invalid_query", f"unknown status {sorted(unknown)}")
        orders = [o for o in self.engine.orders.values() if o.account_id == user.account_id]
        out = []
        for o in sorted(orders, key=lambda o: o.created_at, reverse=True):
            if statuses and wire.STATUS_WORDS[o.status] not in statuses:
                continue
            if q.get("isin") and o.instrument.isin != q["isin"]:
                continue
            if q.get("side") and o.side != q["side"]:
                continue
            if q.get("type") and o.order_type != q["type"]:
                continue
            if q.get("key_creation_id") and o.extra.get("key_id") != q["key_creation_id"]:
                continue
            if start and o.created_at < start or end and o.created_at > end:
                continue
            out.append(self._order(o))
        return self._page(request, out, "orders")

    @_authenticated
    async def get_order(self, request: Request, user: LemonUser) -> Response:
        order = self._find(user, request.path_params["order_id"])
        if order is None:
            return wire.error("order_not_found")
        return wire.envelope(self._order(order))

    @_authenticated
    async def delete_order(self, request: Request, user: LemonUser) -> Response:
        order = self._find(user, request.path_params["order_id"])
        if order is None:
            return wire.error("order_not_found")
        if order.status in (SimStatus.CANCEL_PENDING, SimStatus.CANCELED):
            return wire.envelope()
        if not order.is_open:
            return wire.error("order_not_terminated")
        self.engine.cancel(order)
        return wire.envelope()

    # -- positions and account ------------------------------------------------------------
    @_authenticated
    async def positions(self, request: Request, user: LemonUser) -> Response:
        isin = request.query_params.get("isin")
        items = [
            wire.position_json(p, self.engine.price(p.instrument.key))
            for p in self._account(user).positions.values()
            if p.quantity != 0 and (isin is None or p.instrument.isin == isin)
        ]
        items.sort(key=lambda p: p["isin"])
        return self._page(request, items, "positions")

    @_authenticated
    async def instruments(self, request: Request, user: LemonUser) -> Response:
        """GET instruments ``?isin=A,B`` (comma-separated or repeated) or ``?search=``: the market-data
        resource (lemon serves it at ``https://data.lemon.markets/v1/instruments``; the sandbox on its
        one host), the venue's instruments with their tickers."""
        wanted = {i.strip().upper() for value in request.query_params.getlist("isin") for i in value.split(",")
                  if i.strip()}
        search = (request.query_params.get("search") or "").strip().upper()
        items = [wire.instrument_json(ins) for ins in self.engine.instruments.values()
                 if (not wanted or ins.isin in wanted)
                 and (not search or search in ins.name.upper() or search in (ins.symbol.upper(), ins.isin))]
        items.sort(key=lambda i: i["isin"])
        return self._page(request, items, "instruments")

    @_authenticated
    async def account(self, request: Request, user: LemonUser) -> Response:
        account = self._account(user)
        today = datetime.now(UTC).date()
        bought = sum((f.quantity * f.price for o in self.engine.orders.values() if o.account_id == account.id
                      and o.side == "buy" for f in o.fills if f.at.date() == today), Decimal(0))
        sold = sum((f.quantity * f.price for o in self.engine.orders.values() if o.account_id == account.id
                    and o.side == "sell" for f in o.fills if f.at.date() == today), Decimal(0))
        open_amount = self._open_buy_amount(account)
        cash = account.cash
        return wire.envelope({
            **user.profile,
            "account_id": account.id,
            "mode": "paper",
            "balance": wire.money(cash),
            "cash_to_invest": wire.money(self.cash_to_invest(account)),
            "cash_to_withdraw": wire.money(max(cash - bought, Decimal(0))),
            "amount_bought_intraday": wire.money(bought),
            "amount_sold_intraday": wire.money(sold),
            "amount_open_orders": wire.money(open_amount),
            "amount_open_withdrawals": 0,
            "amount_estimate_taxes": 0,
            "tax_allowance_start": f"{today.year}-01-01",
            "tax_allowance_end": f"{today.year}-12-31",
        })

    def _open(self, account: SimAccount) -> list[SimOrder]:
        return [o for o in self.engine.orders.values() if o.account_id == account.id and o.is_open]

    def _open_buy_amount(self, account: SimAccount) -> Decimal:
        total = Decimal(0)
        for o in self._open(account):
            if o.side == "buy" and o.status is not SimStatus.INACTIVE:
                price = o.limit_price if o.limit_price is not None else self.engine.price(o.instrument.key)
                total += price * o.remaining
        return total

    def cash_to_invest(self, account: SimAccount) -> Decimal:
        return account.cash - self._open_buy_amount(account)


def _order_id(engine: Engine) -> str:
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    return "ord_" + "".join(secrets.choice(alphabet) for _ in range(34))


def _check_body(body: dict[str, Any]) -> str | None:
    for key in ("isin", "side", "quantity"):
        if key not in body:
            return f"{key}: field required"
    if body["side"] not in ("buy", "sell"):
        return "side: must be 'buy' or 'sell'"
    if not isinstance(body["quantity"], int) or isinstance(body["quantity"], bool) or body["quantity"] <= 0:
        return "quantity: value is not a valid positive integer"
    for key in ("stop_price", "limit_price"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            return f"{key}: value is not a valid positive integer"
    if body.get("venue", "xmun") not in ("xmun", "allday"):
        return "venue: unknown venue"
    return None


def _price(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value) / 10000


def _expiry(value: str | None, *, required: bool) -> datetime | Response:
    today = datetime.now(UTC).date()
    if value is None:
        if required:
            return wire.error("order_expiration_date_invalid", "expires_at is required with a limit or stop price")
        day = today
    else:
        match = _DURATION.match(str(value))
        try:
            day = today + timedelta(days=int(match.group(1))) if match else date.fromisoformat(str(value))
        except ValueError:
            return wire.error("invalid_query", "expires_at: expected YYYY-MM-DD or P{n}D")
    if day < today or day > today + timedelta(days=30):
        return wire.error("order_expiration_date_invalid")
    return datetime.combine(day, dtime(22, 59), UTC)


def _when(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """``from``/``to``: a date, or a datetime with ``T`` or a space (the SDK sends ``str(datetime)``)."""
    if not value:
        return None
    value = value.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, dtime.max if end_of_day else dtime.min, UTC)
    parsed = datetime.fromisoformat(value.replace(" ", "T", 1).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_app(venue: LemonVenue, control: ControlPlane) -> Starlette:
    routes: list[Route] = []
    for path, endpoint, methods in (
        ("/v1/orders", venue.list_orders, ["GET"]),
        ("/v1/orders", venue.create_order, ["POST"]),
        ("/v1/orders/{order_id}", venue.get_order, ["GET"]),
        ("/v1/orders/{order_id}", venue.delete_order, ["DELETE"]),
        ("/v1/orders/{order_id}/activate", venue.activate, ["POST"]),
        ("/v1/positions", venue.positions, ["GET"]),
        ("/v1/account", venue.account, ["GET"]),
        ("/v1/instruments", venue.instruments, ["GET"]),
    ):
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route(path + "/", endpoint, methods=methods))
    app = Starlette(routes=[*control.routes(), *routes],
                    exception_handlers={404: _not_found, 405: _not_found, 500: _internal})
    return app


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return wire.error("not_found", "resource not found", status=404)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    return wire.error("internal_error")
