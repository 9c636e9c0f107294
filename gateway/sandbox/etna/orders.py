"""``v1.0/accounts/{accountId}/orders``: place (``POST``), list, get, replace (``PUT``) and
cancel (``DELETE`` → 204, 409 when the order cannot be cancelled); ``…/syncorders`` (place and
wait for validation), ``…/preview/orders`` and ``…/preview/syncorders`` (``VerifyOrderModel``).

Placement answers 200 ``PendingNew`` for every well-formed order; business checks (buying power,
holdings, order types the sandbox does not simulate) turn the order ``Rejected`` a moment later,
with the reason in ``Description``. ``syncorders`` answers once the venue has validated the order
(``New`` or ``Rejected``). Preview answers 200 ``{IsSuccessful, ErrorDescription,
ErrorDescriptionArgs, Commission, Commissions, Cost, NetCost, Quotes, MarginChange}`` and places
nothing; a failed business check is ``IsSuccessful: false`` with the reason in
``ErrorDescription``. Malformed requests answer 422 with ``ModelState``. Request bodies bind without
regard to key case, as .NET model binding does (``TimeInforce`` and ``TimeInForce`` both work).

Buying power (:meth:`OrderHandlers._business_check`): an order that raises the account's gross
position value past what its equity covers at the account's initial margin (``Margin`` 50 %,
``DayTrader`` 25 %, ``Cash`` 100 %) is refused as ``DayTradingBuyingPowerExceeded``, ETNA's word
for it (the wire reference's preview example).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import SimOrder, SimStatus
from ..instruments import SimInstrument
from .filters import ORDER_FIELDS
from .paging import page
from .resources import order_record, order_resource, wire_id, wire_status
from .state import EtnaState
from .wire import EtnaError, json_response, num, parse_wire_datetime

__all__ = ["OrderHandlers"]

_TYPES = ("Market", "Limit", "Stop", "StopLimit", "Pegged", "TrailingStop", "TrailingStopLimit",
          "OneCancelOther", "OneTriggerOther", "OneTriggerOneCancelOther", "External")
_SIMULATED_TYPES = {"Market", "Limit", "Stop", "StopLimit"}
_SIDES = {"Buy": "buy", "Sell": "sell", "SellShort": "sell", "BuyToCover": "buy"}
_TIFS = {"Day": "day", "GoodTillCancel": "gtc", "AtTheOpening": "opg", "ImmediateOrCancel": "ioc",
         "FillOrKill": "fok", "GoodTillCrossing": "gtx", "GoodTillDate": "gtd", "GoodTillTime": "gtt"}
_EXEC_INST = ("DoNotIncrease", "DoNotReduce", "AllOrNone")
_MAX_PAGE = 100
#: initial margin per account ``MarginType``: the share of the gross position value equity must cover
_INITIAL_MARGIN = {"Margin": Decimal("0.5"), "DayTrader": Decimal("0.25"), "Cash": Decimal(1)}
BUYING_POWER_EXCEEDED = "DayTradingBuyingPowerExceeded"
#: the sandbox's commission per trade (the preview example's ``Per Trade Commission``)
COMMISSION = Decimal("3.75")


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"null", parse_float=Decimal)
    except ValueError:
        raise EtnaError(500) from None
    if not isinstance(data, dict):
        raise EtnaError(500)
    return {str(k).lower(): v for k, v in data.items()}


def _enum(value: Any, allowed: Any, name: str, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    for word in allowed:
        if isinstance(value, str) and value.lower() == word.lower():
            return str(word)
    errors[f"resource.{name}"] = [f"Error converting value {json.dumps(str(value))} to type '{name}'."]
    return None


def _number(value: Any, name: str, errors: dict[str, list[str]]) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        return Decimal(str(value))
    except InvalidOperation:
        errors[f"resource.{name}"] = [f"Could not convert {json.dumps(str(value))} to {name}."]
        return None


def _close(now: datetime) -> datetime:
    """The next 21:00 UTC: when a day order is done for the day."""
    close = now.replace(hour=21, minute=0, second=0, microsecond=0)
    return close if close > now else close + timedelta(days=1)


def _date(value: Any, name: str, errors: dict[str, list[str]]) -> datetime | None:
    if value is None:
        return None
    try:
        ticks = parse_wire_datetime(str(value))
    except ValueError:
        errors[f"resource.{name}"] = [f"Could not convert {json.dumps(str(value))} to DateTime."]
        return None
    return datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)


class OrderHandlers:
    def __init__(self, state: EtnaState) -> None:
        self.state = state
        self.engine = state.engine

    def _instrument(self, symbol: str) -> SimInstrument | None:
        for ins in self.engine.instruments.values():
            if ins.symbol.upper() == symbol.upper():
                return ins
        return None

    async def list(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        now = self.state.now()
        orders = [o for o in self.engine.orders.values() if o.account_id == account.id]
        p = page(request, orders, lambda o: order_record(o, now), max_size=_MAX_PAGE, fields=ORDER_FIELDS)
        return json_response(p.envelope(request, [order_resource(o, now) for o in p.items]))

    async def get(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        order = self.state.order(account, request.path_params["order_id"])
        return json_response(order_resource(order, self.state.now()))

    async def place(self, request: Request) -> Response:
        """POST …/orders: booked ``PendingNew``; validation follows a moment later."""
        order = await self._new_order(request)
        self.engine.add_order(order)
        self.engine.activate(order)
        return json_response(order_resource(order, self.state.now()))

    async def place_sync(self, request: Request) -> Response:
        """POST …/syncorders: booked, then answered once validated (``New`` or ``Rejected``)."""
        order = await self._new_order(request)
        self.engine.add_order(order)
        self.engine.activate(order)
        waited, step = 0.0, max(self.engine.config.tick_interval, 0.01)
        limit = max(self.engine.config.ack_delay * 5, 2.0)
        while order.status is SimStatus.PENDING_NEW and waited < limit:
            await asyncio.sleep(step)
            waited += step
        return json_response(order_resource(order, self.state.now()))

    async def preview(self, request: Request) -> Response:
        """POST …/preview/orders (and …/preview/syncorders): ``VerifyOrderModel``, nothing placed."""
        order = await self._new_order(request)
        market = self.engine.price(order.instrument.key)
        cost = (order.quantity * (order.limit_price or order.stop_price or market)).quantize(Decimal("0.01"))
        reason = order.extra.get("reject_reason")
        tick = order.instrument.tick_size
        return json_response({
            "IsSuccessful": reason is None, "ErrorDescription": reason, "ErrorDescriptionArgs": [],
            "Commission": num(COMMISSION), "Commissions": {"Per Trade Commission": num(COMMISSION)},
            "Cost": num(cost), "NetCost": num(cost - COMMISSION),
            "Quotes": [{"Ask": num(market + tick), "Bid": num(market - tick), "Last": num(market), "Volume": 200,
                        "OpenInterest": 0}],
            "MarginChange": 0,
        })

    async def _new_order(self, request: Request) -> SimOrder:
        """The order a ``CreateOrderResource`` describes, checked (422 when malformed) but not
        booked; a failed business check is left in ``extra["reject_reason"]``."""
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        b = await _body(request)
        errors: dict[str, list[str]] = {}
        symbol = b.get("symbol")
        instrument = None
        if not isinstance(symbol, str) or not symbol.strip():
            errors["resource.Symbol"] = ["Symbol is required"]
        else:
            instrument = self._instrument(symbol.strip())
            if instrument is None:
                errors["resource.Symbol"] = [f"Security '{symbol}' is not found"]
        type_ = _enum(b.get("type"), _TYPES, "Type", errors) or ("Market" if "resource.Type" not in errors else None)
        side = _enum(b.get("side"), _SIDES, "Side", errors)
        if b.get("side") is None:
            errors["resource.Side"] = ["Side is required"]
        tif = _enum(b.get("timeinforce"), _TIFS, "TimeInforce", errors) or "Day"
        exec_inst = _enum(b.get("execinst"), _EXEC_INST, "ExecInst", errors) if b.get("execinst") else None
        quantity = _number(b.get("quantity"), "Quantity", errors)
        price = _number(b.get("price"), "Price", errors) or None
        stop = _number(b.get("stopprice"), "StopPrice", errors) or None
        expire = _date(b.get("expiredate"), "ExpireDate", errors)
        if quantity is None or quantity <= 0:
            errors.setdefault("resource.Quantity", ["Quantity must be greater than zero"])
        if type_ in ("Limit", "StopLimit") and (price is None or price <= 0):
            errors.setdefault("resource.Price", [f"Price is required for {type_} orders"])
        if type_ in ("Stop", "StopLimit") and (stop is None or stop <= 0):
            errors.setdefault("resource.StopPrice", [f"StopPrice is required for {type_} orders"])
        now = datetime.now(UTC)
        if tif == "GoodTillDate" and (expire is None or expire <= now):
            errors.setdefault("resource.ExpireDate", ["ExpireDate must be in the future for GoodTillDate orders"])
        if errors or instrument is None or side is None or type_ is None or quantity is None:
            raise EtnaError(422, {"Message": "Validation error occured while processing entity", "ModelState": errors})
        if type_ in ("Market", "Stop"):
            price = None
        if type_ in ("Market", "Limit"):
            stop = None
        if tif in ("GoodTillDate", "GoodTillTime"):
            expires = expire
        else:
            expires = None if tif == "GoodTillCancel" else _close(now)
        client_id = b.get("clientid")
        order = SimOrder(id=self.engine.next_id(), account_id=account.id, instrument=instrument, side=_SIDES[side],
                         quantity=quantity, limit_price=price, stop_price=stop, time_in_force=_TIFS[tif],
                         expires_at=expires, client_order_id=None if client_id is None else str(client_id))
        order.extra.update({
            "wire_side": side, "wire_type": type_, "wire_tif": tif, "user_id": user.id,
            "request_id": self.state.next_request_id(), "correlation_id": uuid.uuid4().hex,
        })
        if exec_inst:
            order.extra["exec_inst"] = exec_inst
        reason = self._business_check(account.id, order)
        if reason:
            order.extra["reject_reason"] = reason
        return order

    def _business_check(self, account_id: str, order: SimOrder) -> str | None:
        side, type_ = order.extra["wire_side"], order.extra["wire_type"]
        if type_ not in _SIMULATED_TYPES:
            return f"Order type {type_} is not supported by this venue"
        account = self.engine.accounts[account_id]
        pos = account.positions.get((order.instrument.key, order.product))
        held = pos.quantity if pos is not None else Decimal(0)
        if side == "Sell" and order.quantity > held:
            return f"Insufficient position: {held} held, {order.quantity} to sell"
        if side == "BuyToCover" and order.quantity > -held:
            return f"Insufficient short position to cover: {-held} short"
        signed = order.quantity if side in ("Buy", "BuyToCover") else -order.quantity
        rate = _INITIAL_MARGIN.get(str(account.extra.get("MarginType")), Decimal(1))
        if self.engine.margin_shortfall(account_id, order.instrument.key, signed, rate) is not None:
            return BUYING_POWER_EXCEEDED
        return None

    async def replace(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        order = self.state.order(account, request.path_params["order_id"])
        b = await _body(request)
        errors: dict[str, list[str]] = {}
        if b.get("id") is None:
            errors["resource.Id"] = ["Id is required"]
        elif str(b.get("id")) != str(wire_id(order)):
            errors["resource.Id"] = ["Id does not match the order in the path"]
        quantity = _number(b.get("quantity"), "Quantity", errors)
        price = _number(b.get("price"), "Price", errors)
        stop = _number(b.get("stopprice"), "StopPrice", errors)
        expire = _date(b.get("expiredate"), "ExpireDate", errors)
        if quantity is not None and quantity <= 0:
            errors["resource.Quantity"] = ["Quantity must be greater than zero"]
        if errors:
            raise EtnaError(422, {"Message": "Validation error occured while processing entity", "ModelState": errors})
        now = self.state.now()
        status = wire_status(order, now)
        if not order.is_open or order.status is SimStatus.CANCEL_PENDING:
            raise EtnaError(409, {"Message": f"Order {wire_id(order)} cannot be replaced in status {status}"})
        if quantity is not None and quantity < order.filled_quantity:
            raise EtnaError(409, {"Message": f"Order {wire_id(order)} has {order.filled_quantity} executed already"})
        type_ = order.extra["wire_type"]
        order.extra.update({"target": "Modify", "trans_type": "Correct", "request_id": self.state.next_request_id(),
                            "replace_until": now + self.engine.config.ack_delay})
        if b.get("clientid") is not None:
            order.client_order_id = str(b["clientid"])
        self.engine.modify(
            order, quantity=quantity,
            limit_price=price if type_ in ("Limit", "StopLimit") and price else None,
            stop_price=stop if type_ in ("Stop", "StopLimit") and stop else None,
            expires_at=expire if order.time_in_force in ("gtd", "gtt") else None,
        )
        return json_response(order_resource(order, self.state.now()))

    async def cancel(self, request: Request) -> Response:
        user = self.state.auth.require(request)
        account = self.state.account(user, request.path_params["account_id"])
        order = self.state.order(account, request.path_params["order_id"])
        if not order.is_open:
            status = wire_status(order, self.state.now())
            raise EtnaError(409, {"Message": f"Order {wire_id(order)} cannot be cancelled in status {status}"})
        if order.status is not SimStatus.CANCEL_PENDING:
            order.extra.update({"target": "Cancel", "trans_type": "Cancel",
                                "request_id": self.state.next_request_id()})
            self.engine.cancel(order)
        return Response(status_code=204)
