"""IBKR order endpoints: place (with reply questions), reply, modify, cancel, live orders, order
status (ibkr.md §4-§8, §12, §15).

Questions asked before an order exists, in this order (suppressed ids are skipped):
``p6`` for an allocation-group order, ``o163`` when a limit price is more than 3 % from the
market, ``o354`` for an instrument the session has no market data for (IBM, conid 8314),
``o10331`` for stop orders. A reply chain is dropped by any other request that reaches the
session (the venue's gate drops it for every wire request but the reply itself and the keep-alive
``tickle`` / ``iserver/auth/status``: "Submitting other orders or other requests will cancel the
order", CAMPUS #place-order-reply); replying to it then answers HTTP 400 ``reply id not found``.

Limit prices: a passive limit however far from the market (BUY under it, SELL over it) gets the
``o163`` percentage question and then rests; only an aggressive limit past the market by more than
:data:`AGGRESSIVE_CAP` is refused ("We cannot accept an order at the limit price you selected…").

Buying power: when the order is finally submitted (after its questions), an order that raises the
account's gross position value beyond twice its equity (Reg T initial margin 50 %, IBKR margin
accounts) is refused with IBKR's margin reject, ``Order rejected - reason:YOUR ORDER IS NOT
ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [… USD] MUST EXCEED
THE INITIAL MARGIN [… USD]`` (HTTP 200, as every business reject); an allocation-group order is
checked for each member's share.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import SimOrder, SimStatus
from .session import Chain
from .state import VenueState, ib_error, ib_json, read_json
from .wire import live_order, order_status

__all__ = ["OrderApi"]

_TYPES = {"LMT": "limit", "MKT": "market", "STP": "stop", "STOP_LIMIT": "stop_limit", "STP_LIMIT": "stop_limit"}
_TIFS = {"DAY": "day", "GTC": "gtc", "OPG": "opg", "IOC": "ioc"}
_FILTERS = {"inactive": "Inactive", "pending_submit": "PendingSubmit", "pre_submitted": "PreSubmitted",
            "submitted": "Submitted", "filled": "Filled", "pending_cancel": "PendingCancel",
            "cancelled": "Cancelled"}
_QUESTIONS = {
    "p6": "This order will be distributed over multiple accounts. We strongly suggest you familiarize yourself "
          "with our allocation facilities before submitting orders.",
    "o163": "The following order \"{order}\" price exceeds \nthe Percentage constraint of 3%.\n"
            "Are you sure you want to submit this order?",
    "o354": "You are submitting an order without market data. We strongly recommend against this as it may "
            "result in erroneous and unexpected trades.\nAre you sure you want to submit this order?",
    "o10331": "You are about to submit a stop order. Please be aware of the various stop order types available "
              "and the risks associated with each one.\nAre you sure you want to submit this order?",
}
#: how far past the market (as a fraction) an aggressive limit may be before IBKR refuses it
AGGRESSIVE_CAP = Decimal("0.5")
#: Reg T initial margin of the sandbox's margin accounts
INITIAL_MARGIN = Decimal("0.5")
_MARGIN_REJECT = ("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
                  "EQUITY WITH LOAN VALUE [{equity:.2f} {currency}] MUST EXCEED THE INITIAL MARGIN "
                  "[{required:.2f} {currency}]")
_FAR_REJECT = ("We cannot accept an order at the limit price you selected. Please submit your order using a limit "
               "price that is closer to the current market price of {price}.  Alternatively, you can convert your "
               "order to an Algorithmic Order (IBALGO).")


class _Reject(Exception):
    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _dec(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise _Reject(f"invalid {name}", 500) from None


class OrderApi:
    def __init__(self, state: VenueState) -> None:
        self.s = state

    # -- helpers --------------------------------------------------------------------------
    def _prices(self, spec: dict[str, Any], kind: str) -> tuple[Decimal | None, Decimal | None]:
        """(limit, stop) per ibkr.md §4.1: ``price`` is the stop for STP, ``auxPrice`` the stop for
        STOP_LIMIT."""
        if kind == "market":
            return None, None
        if "price" not in spec or spec["price"] is None:
            raise _Reject("invalid order price fields")
        price = _dec(spec["price"], "price")
        if kind == "limit":
            return price, None
        if kind == "stop":
            return None, price
        if spec.get("auxPrice") is None:
            raise _Reject("invalid order price fields")
        return price, _dec(spec["auxPrice"], "auxPrice")

    def _questions(self, order: SimOrder, group: bool) -> list[tuple[str, str]]:
        market = self.s.engine.price(order.instrument.key)
        ids: list[str] = []
        if group:
            ids.append("p6")
        if order.limit_price is not None and abs(order.limit_price - market) / market > Decimal("0.03"):
            ids.append("o163")
        if order.instrument.ids["conid"] in self.s.no_market_data:
            ids.append("o354")
        if order.stop_price is not None:
            ids.append("o10331")
        text = f"{order.side.upper()} {order.quantity} {order.instrument.symbol} @ {order.limit_price}"
        return [(i, _QUESTIONS[i].format(order=text)) for i in ids if i not in self.s.session.suppressed]

    def _ask(self, chain: Chain) -> Response:
        reply_id = str(uuid.uuid4())
        self.s.session.chains[reply_id] = chain
        msg_id, text = chain.questions[0]
        return ib_json([{"id": reply_id, "message": [text], "isSuppressed": False, "messageIds": [msg_id],
                         "messageOptions": ["Yes", "No"]}])

    def _accepted(self, order: SimOrder) -> list[dict[str, Any]]:
        return [{"order_id": order.id, "order_status": self.s.status_of(order), "encrypt_message": "1"}]

    def _build(self, account: str, spec: dict[str, Any]) -> SimOrder:
        ins = self.s.by_conid(spec.get("conid") or spec.get("conidex") or "")
        if ins is None:
            raise _Reject(f"Contract ID {spec.get('conid')} is not valid", 200)
        kind = _TYPES.get(str(spec.get("orderType", "")).upper())
        if kind is None:
            raise _Reject(f"invalid order type: {spec.get('orderType')}")
        side = str(spec.get("side", "")).lower()
        if side not in ("buy", "sell"):
            raise _Reject("invalid side", 500)
        tif = _TIFS.get(str(spec.get("tif", "")).upper())
        if tif is None:
            raise _Reject(f"invalid time in force: {spec.get('tif')}")
        qty = _dec(spec.get("quantity", 0), "quantity")
        if qty <= 0:
            raise _Reject("Order quantity must be greater than 0")
        limit, stop = self._prices(spec, kind)
        market = self.s.engine.price(ins.key)
        if limit is not None:
            past = (limit - market) / market if side == "buy" else (market - limit) / market
            if past > AGGRESSIVE_CAP:  # aggressive beyond the cap; a passive far limit only asks o163
                raise _Reject(_FAR_REJECT.format(price=market))
        coid = spec.get("cOID")
        order = SimOrder(id=self.s.next_order_id(), account_id=account, instrument=ins, side=side, quantity=qty,
                         limit_price=limit, stop_price=stop, time_in_force=tif,
                         client_order_id=str(coid) if coid else None)
        outside = spec.get("outsideRTH", spec.get("outsideRth"))
        if outside is not None:
            order.extra["outside_rth"] = bool(outside)
        return order

    def _margin(self, order: SimOrder) -> str | None:
        """IBKR's margin reject for ``order`` when it exceeds the buying power, else ``None``."""
        engine = self.s.engine
        split = engine.allocations[order.account_id](order) if order.account_id in self.s.groups \
            else {order.account_id: order.quantity}
        for member, quantity in split.items():
            signed = quantity if order.side == "buy" else -quantity
            short = engine.margin_shortfall(member, order.instrument.key, signed, INITIAL_MARGIN)
            if short is not None:
                equity, required = short
                return _MARGIN_REJECT.format(equity=equity, required=required,
                                             currency=engine.accounts[member].currency)
        return None

    def _duplicate(self, coid: str | None) -> None:
        if coid and coid in self.s.coids:
            raise _Reject(f"Order couldn't be submitted: Local order ID={coid} is already registered.")

    def _create(self, order: SimOrder) -> Response:
        try:
            self._duplicate(order.client_order_id)
        except _Reject as exc:
            return ib_error(exc.message, exc.status)
        refusal = self._margin(order)
        if refusal is not None:
            return ib_error(refusal)
        if order.client_order_id:
            self.s.coids.add(order.client_order_id)
        self.s.engine.add_order(order)
        self.s.engine.activate(order)
        return ib_json(self._accepted(order))

    def _own_order(self, account: str, order_id: str) -> SimOrder | None:
        order = self.s.engine.orders.get(order_id)
        if order is None or not self.s.visible_to(order, account) and order.account_id != account:
            return None
        return order

    # -- endpoints ------------------------------------------------------------------------
    async def place(self, request: Request) -> Response:
        """POST iserver/account/{accountId}/orders"""
        self.s.session.drop_chains()
        account = request.path_params["account"]
        group = account in self.s.groups
        if not group and account not in self.s.sub_accounts:
            if account == self.s.master:
                return ib_error("No trading permissions.")
            return ib_error("Invalid account ID", 500)
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list) or not body["orders"]:
            return ib_error("Bad Request: orders array is required", 400)
        if len(body["orders"]) > 1:
            return ib_error("Only one order per request is supported by the sandbox (no brackets / OCA)")
        try:
            order = self._build(account, body["orders"][0])
            self._duplicate(order.client_order_id)
        except _Reject as exc:
            return ib_error(exc.message, exc.status)
        questions = self._questions(order, group)
        if questions:
            return self._ask(Chain(questions, lambda: self._create(order)))
        return self._create(order)

    async def reply(self, request: Request) -> Response:
        """POST iserver/reply/{replyId}"""
        reply_id = request.path_params["reply_id"]
        chain = self.s.session.chains.pop(reply_id, None)
        self.s.session.drop_chains()
        if chain is None:
            return ib_error(f"reply id not found: '{reply_id}'", 400)
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("confirmed") is not True:
            return ib_error("Order not confirmed ")
        rest = chain.questions[1:]
        if rest:
            return self._ask(Chain(rest, chain.complete))
        result: Response = chain.complete()
        return result

    async def modify(self, request: Request) -> Response:
        """POST iserver/account/{accountId}/order/{orderId} (a bare order object)"""
        self.s.session.drop_chains()
        if not self.s.session.preflight:
            return ib_error("Please query /iserver/accounts first", 400)
        account, order_id = request.path_params["account"], request.path_params["order_id"]
        order = self._own_order(account, order_id)
        if order is None or not order.is_open or order.status is SimStatus.CANCEL_PENDING:
            return ib_error(f"OrderID {order_id} doesn't exist")
        spec = await read_json(request)
        if not isinstance(spec, dict) or "orders" in spec:
            return ib_error("Bad Request: body must be a single order object", 400)
        try:
            kind = _TYPES.get(str(spec.get("orderType", "")).upper(), order.order_type)
            limit, stop = self._prices(spec, kind)
            qty = _dec(spec["quantity"], "quantity") if spec.get("quantity") is not None else None
            tif = _TIFS.get(str(spec.get("tif", "")).upper())
        except _Reject as exc:
            return ib_error(exc.message, exc.status)
        probe = SimOrder(id=order.id, account_id=account, instrument=order.instrument, side=order.side,
                         quantity=qty or order.quantity, limit_price=limit, stop_price=stop)

        def complete() -> Response:
            if not order.is_open:
                return ib_error(f"OrderID {order_id} doesn't exist")
            self.s.engine.modify(order, quantity=qty, limit_price=limit, stop_price=stop, time_in_force=tif)
            return ib_json(self._accepted(order))

        questions = [q for q in self._questions(probe, False) if q[0] != "o354"]
        if questions:
            return self._ask(Chain(questions, complete))
        return complete()

    async def cancel(self, request: Request) -> Response:
        """DELETE iserver/account/{accountId}/order/{orderId} (``-1`` cancels all open orders)"""
        self.s.session.drop_chains()
        if not self.s.session.preflight:
            return ib_error("Please query /iserver/accounts first", 400)
        account, order_id = request.path_params["account"], request.path_params["order_id"]
        if order_id == "-1":
            for order in list(self.s.engine.orders.values()):
                if self.s.visible_to(order, account) and order.is_open and order.status is not SimStatus.CANCEL_PENDING:
                    self.s.engine.cancel(order)
            return ib_json({"msg": "Request was submitted", "order_id": -1, "conid": -1, "account": account})
        order = self._own_order(account, order_id)
        if order is None:
            return ib_error(f"OrderID {order_id} doesn't exist")
        if not order.is_open:
            return ib_error(f"OrderID {order_id} cannot be cancelled: it is {self.s.status_of(order)}")
        if order.status is not SimStatus.CANCEL_PENDING:
            self.s.engine.cancel(order)
        return ib_json({"msg": "Request was submitted", "order_id": int(order.id),
                        "conid": int(order.instrument.ids["conid"]), "account": account})

    async def live(self, request: Request) -> Response:
        """GET iserver/account/orders: the selected account's orders (``filters``, ``force``)"""
        session = self.s.session
        empty = {"orders": [], "snapshot": False}
        if not session.preflight:
            return ib_json(empty)
        if request.query_params.get("force", "").lower() == "true":
            session.warm = False
            return ib_json(empty)
        if not session.warm:
            session.warm = True
            return ib_json(empty)
        wanted = {_FILTERS[f.strip().lower()] for f in request.query_params.get("filters", "").split(",")
                  if f.strip().lower() in _FILTERS}
        items = []
        for order in self.s.engine.orders.values():
            if not self.s.visible_to(order, session.selected):
                continue
            status = self.s.status_of(order)
            if wanted and status not in wanted:
                continue
            read_under = session.selected
            if read_under == "All":  # every order of the book, each under its own account (groups': the master)
                read_under = order.account_id if order.account_id in self.s.engine.accounts else self.s.master
            items.append(live_order(order, status, read_under))
        items.sort(key=lambda i: i["orderId"], reverse=True)
        return ib_json({"orders": items[:1000], "snapshot": True})

    async def status(self, request: Request) -> Response:
        """GET iserver/account/order/status/{orderId}: orders of the selected account only (else 503)"""
        if not self.s.session.preflight:
            return ib_error("Please query /iserver/accounts first", 400)
        order = self.s.engine.orders.get(request.path_params["order_id"])
        if order is None or not self.s.visible_to(order, self.s.session.selected):
            return ib_error("Service Unavailable", 503, with_code=True)
        return ib_json(order_status(order, self.s.status_of(order)))
