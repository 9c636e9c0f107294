"""The Alice Blue order endpoints: ``orders/placeorder`` (a JSON array, per-item results),
``orders/modify``, ``orders/cancel``, ``orders/book``, ``orders/history``, ``orders/trades`` and
``orders/positions/sqroff`` (the current official item — ``orderType`` ``LIMIT`` / ``MARKET``,
``price``, ``validity``, numeric ``quantity``, as seed 002 sends it — and the older one the
reference documents — ``MKT``, ``ret``, string ``quantity``; its own ``requestTime`` format).

Placement is one step: a valid item is booked and released to the engine at once. The exchange
and RMS checks book the order ``REJECTED`` with a ``rejectionReason`` (tick size:
``"ORA:Price 1120.15 is not a multiple of tick size 0.10 "``, trailing space included).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import OPEN_STATES, SimOrder, SimStatus
from .codes import LEGACY_POSITION_WORDS
from .state import AliceState, Listing
from .validation import ORDER_TYPES, Refusal, parse_place_item, parse_price, parse_quantity
from .wire import failure, ok, order_item, read_json, request_time, status_word, trade_items

__all__ = ["OrderRoutes"]

#: share of an order's value the RMS blocks per product (delivery in full, intraday at 5x, MTF 4x)
MARGIN = {"LONGTERM": Decimal(1), "INTRADAY": Decimal("0.2"), "MTF": Decimal("0.25")}


class OrderRoutes:
    """Handlers bound to one venue state; each takes ``(request, client_id)``."""

    def __init__(self, state: AliceState) -> None:
        self.state = state
        self.engine = state.engine

    # -- helpers --------------------------------------------------------------------------
    def _orders(self, client_id: str) -> list[SimOrder]:
        return [o for o in self.engine.orders.values() if o.account_id == client_id]

    def _order(self, client_id: str, broker_order_id: Any) -> SimOrder | None:
        order = self.engine.orders.get(str(broker_order_id))
        return order if order is not None and order.account_id == client_id else None

    def _book(self, client_id: str, listing: Listing, side: str, quantity: int, product: str, order_type: str,
              price: Decimal | None, trigger: Decimal | None, *, validity: str = "DAY",
              complexity: str = "REGULAR", tag: str = "", algo_id: str = "", disclosed: int = 0,
              price_text: str = "", trigger_text: str = "", source: str = "API") -> SimOrder:
        ins = listing.instrument
        order = SimOrder(self.state.new_order_id(), client_id, ins, side, Decimal(quantity), limit_price=price,
                         stop_price=trigger, time_in_force=validity.lower(), client_order_id=tag or None,
                         product=product)
        order.extra.update(exchange=listing.exchange, instrument_id=listing.instrument_id,
                           trading_symbol=listing.trading_symbol, formatted_name=listing.trading_symbol,
                           exchange_order_id=self.state.new_exchange_order_id(), order_type=order_type,
                           validity=validity, complexity=complexity, order_tag=tag, algo_id=algo_id,
                           disclosed=disclosed, source=source)
        self.engine.add_order(order)
        reason = self._exchange_check(listing, price, price_text, trigger, trigger_text) \
            or self._rms_check(order, listing)
        if reason:
            self.engine.reject(order, reason)
        else:
            self.engine.activate(order)
        return order

    def _exchange_check(self, listing: Listing, price: Decimal | None, price_text: str,
                        trigger: Decimal | None, trigger_text: str) -> str | None:
        tick = listing.tick_size
        if price is not None and price % tick:
            return f"ORA:Price {price_text or price} is not a multiple of tick size {tick:.2f} "
        if trigger is not None and trigger % tick:
            return f"ORA:Trigger price {trigger_text or trigger} is not a multiple of tick size {tick:.2f} "
        return None

    def _rms_check(self, order: SimOrder, listing: Listing) -> str | None:
        account = self.engine.accounts[order.account_id]
        if order.side == "buy":
            px = order.limit_price or order.stop_price or self.engine.price(order.instrument.key)
            required = px * order.quantity * MARGIN[order.product]
            if required > account.cash:
                return (f"RMS:Margin Exceeds,Required:{required:.2f}, Available:{account.cash:.2f} for entity "
                        f"account-{order.account_id} across exchange across segment across product ")
            return None
        if order.product == "INTRADAY":
            return None
        pos = account.positions.get((order.instrument.key, order.product))
        held = pos.quantity if pos is not None else Decimal(0)
        pending = sum((o.remaining for o in self._orders(order.account_id)
                       if o is not order and o.is_open and o.side == "sell" and o.product == order.product
                       and o.instrument.key == order.instrument.key), Decimal(0))
        if order.quantity > held - pending:
            return f"RMS:Rule: Check holdings, Sell quantity exceeds holdings for {listing.trading_symbol} "
        return None

    # -- endpoints ------------------------------------------------------------------------
    async def placeorder(self, request: Request, client_id: str) -> Response:
        """POST orders/placeorder: a basket; each item answers on its own."""
        body = await read_json(request)
        if not isinstance(body, list) or not body:
            return failure("EC914")
        results: list[dict[str, Any]] = []
        for raw in body:
            try:
                item = parse_place_item(self.state, raw)
            except Refusal as refusal:
                results.append({"status": "Not_Ok", "brokerOrderId": "", "message": refusal.code})
                continue
            order = self._book(client_id, item.listing, item.side, item.quantity, item.product, item.order_type,
                               item.price, item.trigger, validity=item.validity, complexity=item.complexity,
                               tag=item.tag, algo_id=item.algo_id, disclosed=item.disclosed,
                               price_text=item.price_text, trigger_text=item.trigger_text)
            results.append({"requestTime": request_time(), "brokerOrderId": order.id})
        return ok(results)

    async def modify(self, request: Request, client_id: str) -> Response:
        """POST orders/modify: change quantity, type, prices or validity of an open order."""
        body = await read_json(request)
        if not isinstance(body, dict):
            return failure("EC914")
        if not body.get("brokerOrderId"):
            return failure("EC945")
        order = self._order(client_id, body["brokerOrderId"])
        if order is None:
            return failure("EC999")
        if order.status not in OPEN_STATES or order.status is SimStatus.CANCEL_PENDING:
            return failure("EC993")
        try:
            quantity = parse_quantity(body["quantity"]) if body.get("quantity") not in (None, "") else None
            order_type = str(body.get("orderType") or order.extra["order_type"]).upper()
            if order_type not in ORDER_TYPES:
                raise Refusal("EC930")
            price, price_text = parse_price(body.get("price"), "EC957", "EC958")
            trigger, trigger_text = parse_price(body.get("slTriggerPrice"), "EC959", "EC960")
            validity = str(body.get("validity") or order.extra["validity"]).upper()
            if validity not in ("DAY", "IOC"):
                raise Refusal("EC932")
        except Refusal as refusal:
            return failure(refusal.code)
        if quantity is not None and quantity < order.filled_quantity:
            return failure("EC993")
        price = price if order_type in ("LIMIT", "SL") else None
        trigger = trigger if order_type in ("SL", "SLM") else None
        if order_type in ("LIMIT", "SL") and price is None:
            price, price_text = order.limit_price, ""
            if price is None:
                return failure("EC950")
        if order_type in ("SL", "SLM") and trigger is None:
            trigger, trigger_text = order.stop_price, ""
            if trigger is None:
                return failure("EC951")
        listing = self.state.listing(order.extra["exchange"], order.extra["instrument_id"])
        assert listing is not None
        reason = self._exchange_check(listing, price, price_text, trigger, trigger_text)
        if reason:
            return failure(reason.strip())  # a refused modification: prose, and the order stays as it was
        order.limit_price, order.stop_price = price, trigger
        order.extra.update(order_type=order_type, validity=validity)
        self.engine.modify(order, quantity=Decimal(quantity) if quantity is not None else None,
                           time_in_force=validity.lower())
        return ok([{"brokerOrderId": order.id, "requestTime": request_time()}])

    async def cancel(self, request: Request, client_id: str) -> Response:
        """POST orders/cancel ``{"brokerOrderId": …}``."""
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("brokerOrderId"):
            return failure("EC945")
        order = self._order(client_id, body["brokerOrderId"])
        if order is None:
            return failure("EC997")
        if not order.is_open or order.status is SimStatus.CANCEL_PENDING:
            return failure(f"The order is in {status_word(order)} status and cannot be cancelled.")
        self.engine.cancel(order)
        return ok([{"brokerOrderId": order.id, "requestTime": request_time()}])

    async def book(self, request: Request, client_id: str) -> Response:
        """GET orders/book: today's orders, oldest first; EC916 when there are none."""
        orders = self._orders(client_id)
        if not orders:
            return failure("EC916")
        return ok([order_item(self.state, o) for o in orders])

    async def history(self, request: Request, client_id: str) -> Response:
        """POST orders/history ``{"brokerOrderId": …}``: one row per state, the latest first."""
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("brokerOrderId"):
            return failure("EC945")
        order = self._order(client_id, body["brokerOrderId"])
        if order is None:
            return failure("EC998")
        rows = self.state.history.get(order.id) or [order_item(self.state, order)]
        return ok([{k: v for k, v in row.items() if k != "_sig"} for row in reversed(rows)])

    async def trades(self, request: Request, client_id: str) -> Response:
        """GET orders/trades: one item per fill; EC926 when there are none."""
        items = [t for o in self._orders(client_id) for t in trade_items(o)]
        return ok(items) if items else failure("EC926")

    async def sqroff(self, request: Request, client_id: str) -> Response:
        """POST orders/positions/sqroff: an array of items in the current format (``orderType``
        ``MARKET`` / ``LIMIT`` with ``price``, ``validity``, numeric ``quantity``) or the older one
        (``MKT``, ``ret``, ``quantity`` a string); each closes (part of) a position in its product,
        at market or at the limit."""
        body = await read_json(request)
        if not isinstance(body, list) or not body:
            return failure("EC914")
        results: list[dict[str, Any]] = []
        for raw in body:
            try:
                order = self._square_off(client_id, raw)
            except Refusal as refusal:
                results.append({"status": "Not_Ok", "brokerOrderId": "", "message": refusal.code})
                continue
            results.append({"requestTime": request_time(square_off=True), "brokerOrderId": order.id})
        return ok(results)

    def _square_off(self, client_id: str, raw: Any) -> SimOrder:
        if not isinstance(raw, dict):
            raise Refusal("EC914")
        exchange = str(raw.get("exchange") or "").upper()
        if not exchange:
            raise Refusal("EC900")
        instrument_id = str(raw.get("instrumentId") or "")
        if not instrument_id:
            raise Refusal("EC941")
        listing = self.state.listing(exchange, instrument_id)
        if listing is None:
            raise Refusal("EC947")
        quantity = parse_quantity(raw.get("quantity"))
        product = str(raw.get("product") or "").upper()
        product = LEGACY_POSITION_WORDS.get(product, product)  # a position's own word (CNC, MIS) is fine
        if product not in MARGIN:
            raise Refusal("EC092" if product else "EC906")
        side = str(raw.get("transactionType") or "").upper()
        if side not in ("BUY", "SELL"):
            raise Refusal("EC929" if side else "EC907")
        kind = str(raw.get("orderType") or "").upper()
        if not kind:
            raise Refusal("EC934")
        if kind not in ("MKT", "MARKET", "LIMIT"):
            raise Refusal("EC930")
        price, price_text = None, ""
        if kind == "LIMIT":
            price, price_text = parse_price(raw.get("price"), "EC957", "EC958")
            if price is None:
                raise Refusal("EC950")
        validity = str(raw.get("validity") or raw.get("ret") or "DAY").upper()
        if validity not in ("DAY", "IOC"):
            raise Refusal("EC932")
        pos = self.engine.accounts[client_id].positions.get((listing.instrument.key, product))
        held = pos.quantity if pos is not None else Decimal(0)
        closable = held if side == "SELL" else -held
        if closable < quantity:
            raise Refusal("EC868")
        return self._book(client_id, listing, side.lower(), quantity, product, "LIMIT" if price else "MARKET",
                          price, None, validity=validity, price_text=price_text,
                          source=str(raw.get("source") or "API"))
