"""The Alice Blue adapter (ANT API v2, ``open-api/od/v1/``): build → call → parse.

One connection is one Alice Blue login, so one account (the ``clientId`` of the session). Orders
carry the request's ``client_order_id`` as ``orderTag``; a placement whose answer is lost is
reconciled by looking the tag up in ``orders/book``. Square-off at market uses the broker's own
``orders/positions/sqroff``, which has no ``orderTag``: the book's order ids are read first, and a
lost answer is reconciled by the one new untagged order that matches the square-off (see
``reconcile.py``); none or several end as ``OrderOutcomeUnknown``. A limit square-off is a regular
placement of the opposite order in the position's product (with the tag).

Tick sizes are the broker's business: prices are sent as given and an off-tick price comes back
as ``InvalidOrder`` (``broker_code="REJECTED"``, ``broker_message`` = ``rejectionReason``); an
order the RMS books rejected for margin (``RMS:Margin Exceeds…``) as ``InsufficientFunds``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import Broker, ConnectionStatus, OrderStatus, OrderType, Product, TimeInForce
from ...domain.errors import (
    BadResponse,
    GatewayError,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    NotSupported,
    OperationFailed,
    OrderNotFound,
    OrderOutcomeUnknown,
    RateLimitExceeded,
)
from ...domain.keys import AccountKey, OrderKey
from ...domain.models import Account, Money, Order, Position
from ...domain.requests import OrderFilter, OrderRequest, OrderUpdate, PositionFilter
from ..base import BaseAdapter, Capabilities, PlaceOutcome
from ..pacing import PacingRules
from ..placement import send_once
from ..runtime import Runtime
from .builders import closing_side, conversion_body, modify_body, place_item, sqroff_item, wire_quantity
from .client import DOCUMENTED_PACING, AliceBlueClient
from .contracts import ContractMaster
from .errors import error_for_code
from .parsing import CURRENCY, dec, parse_order
from .positions import merge_positions, wire_listing
from .reconcile import SquareOffSpec, book_ids, by_tag, square_off_candidates

__all__ = ["AliceBlueAdapter"]


class AliceBlueAdapter(BaseAdapter):
    """Alice Blue: holdings + positions as ``Position`` (LONGTERM / MTF / INTRADAY), REGULAR orders."""

    broker = Broker.ALICEBLUE
    capabilities = Capabilities(
        modify_order=True,
        convert_position=True,
        native_square_off=True,
        order_types=frozenset(OrderType),
        products=frozenset({Product.INTRADAY, Product.LONGTERM, Product.MTF}),
        fractional_quantities=False,
    )

    def __init__(self, config: ConnectionConfig, runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.client = AliceBlueClient(config, self.scheduler)
        self.contracts = ContractMaster(self.client.contract_master)
        self.device_id = str(config.options.get("device_id", "broker-gateway"))

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Log in and load the NSE / BSE contract masters; a failure only marks the status."""
        try:
            await self.client.login()
            await asyncio.gather(*(self.contracts.load(ex) for ex in ("NSE", "BSE")))
            self.status = ConnectionStatus.UP
        except GatewayError as exc:
            self.status = ConnectionStatus.UNAUTHENTICATED if exc.code == "UNAUTHENTICATED" else ConnectionStatus.DOWN

    def pacing_rules(self) -> PacingRules:
        """aliceblue.md: 1 800 requests per 15 minutes, unless ``rate_limit`` is set."""
        return super().pacing_rules() if self.config.rate_limit is not None else DOCUMENTED_PACING

    async def close(self) -> None:
        await self.client.close()
        await super().close()

    def upstream_calls(self) -> int:
        return self.client.calls

    async def _account_number(self, account: AccountKey | None = None) -> str:
        if self.client.session_token is None:
            await self.client.login()
        client_id = self.client.client_id or ""
        if account is not None and account.account_number != client_id:
            raise OrderNotFound(f"account {account.account_number} is not this Alice Blue login ({client_id})",
                                connection=self.connection)
        return client_id

    def _isin(self, row: dict[str, Any]) -> str | None:
        return self.contracts.isin_for(str(row.get("exchange") or ""), str(row.get("instrumentId") or ""))

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """GET profile/ + GET limits/ → the one account of this login; ``cash`` = ``tradingLimit``."""
        profile, limits = await asyncio.gather(self.client.profile(), self.client.limits())
        if not profile:
            raise BadResponse("profile/ answered no item", connection=self.connection)
        p = profile[0]
        cash = Money(dec(limits[0].get("tradingLimit"), "tradingLimit", Decimal(0)), CURRENCY) if limits else None
        return [Account(key=AccountKey(self.connection, str(p["clientId"])), broker=self.broker,
                        display_name=p.get("clientName") or None, base_currency=CURRENCY, cash=cash,
                        raw={"profile": p, "limits": limits[0] if limits else None})]

    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        """GET holdings/CNC, holdings/MTF and positions (concurrently) merged into positions; see
        ``positions.py`` for the rule. Empty books (EC920 / EC922) are empty lists."""
        number = await self._account_number(account)
        positions: list[Position] = await self.snapshot(("positions", account), lambda: self._read_positions(number))
        return [p for p in positions if filter is None or filter.matches(p)]

    async def _read_positions(self, number: str) -> list[Position]:
        cnc, mtf, lines = await asyncio.gather(self.client.holdings("CNC"), self.client.holdings("MTF"),
                                               self.client.positions())
        holdings = [(r, Product.LONGTERM) for r in cnc] + [(r, Product.MTF) for r in mtf]
        return merge_positions(holdings, lines, self.connection, number, datetime.now(UTC), self.contracts.isin_for)

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """GET orders/book: today's orders (EC916 is an empty list)."""
        await self._account_number(account)
        orders: list[Order] = await self.snapshot(("orders", account), self._read_book)
        return [o for o in orders if filter is None or filter.matches(o)]

    async def _read_book(self) -> list[Order]:
        return [parse_order(row, self.connection, self._isin(row)) for row in await self.client.orders_book()]

    async def fetch_order(self, key: OrderKey) -> Order:
        """The order ``key`` from GET orders/book; ``OrderNotFound`` when the book has none."""
        for order in await self.fetch_orders(AccountKey(key.connection, key.account_number)):
            if order.key.broker_order_id == key.broker_order_id:
                return order
        raise OrderNotFound(f"no Alice Blue order {key.broker_order_id} today", connection=self.connection)

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """The order whose ``orderTag`` is ``client_order_id`` in GET orders/book, or ``None``."""
        return by_tag(await self.fetch_orders(account), client_order_id)

    # -- writes ---------------------------------------------------------------------------
    def _rejected(self, order: Order) -> Order:
        if order.status is OrderStatus.REJECTED:
            reason = order.notes or ""
            cls = InsufficientFunds if reason.upper().startswith("RMS:MARGIN EXCEEDS") else InvalidOrder
            raise cls(f"Alice Blue rejected order {order.key.broker_order_id}: {reason.strip()}",
                      connection=self.connection, broker_code="REJECTED", broker_message=reason)
        return order

    def _placed(self, items: list[Any], what: str) -> str:
        if not items or not isinstance(items[0], dict):
            raise BadResponse(f"{what}: no result item", connection=self.connection)
        item = items[0]
        if str(item.get("status", "Ok")).lower() != "ok" or not item.get("brokerOrderId"):
            raise error_for_code(str(item.get("message", "")), what=f"Alice Blue refused the {what}") \
                .with_connection(self.connection)
        return str(item["brokerOrderId"])

    async def _read_back(self, account: AccountKey, broker_order_id: str) -> Order:
        try:
            return self._rejected(await self.fetch_order(OrderKey(self.connection, account.account_number,
                                                                  broker_order_id)))
        except OrderNotFound:
            raise BadResponse(f"order {broker_order_id} was acknowledged but is not in orders/book",
                              connection=self.connection) from None

    async def create_order(self, request: OrderRequest) -> PlaceOutcome:
        """POST orders/placeorder with one item (``orderTag`` = ``client_order_id``; product from
        the request, LONGTERM by default), then the order read back from orders/book.

        Raises:
            InvalidInput: fractional quantity, GTC/GTD/FOK/OPG, a product Alice Blue lacks, an
                unknown instrument.
            InvalidOrder: a refused item (``broker_code`` EC…) or an order booked REJECTED
                (``broker_code`` ``REJECTED``, ``broker_message`` the ``rejectionReason``).
            OrderOutcomeUnknown: the answer was lost and no order carries the tag.
        """
        if request.account is None:
            raise NotSupported("Alice Blue has no allocation groups", connection=self.connection)
        await self._account_number(request.account)
        ref = request.instrument
        if ref.broker_instrument_id and ref.exchange:
            exchange, instrument_id = ref.exchange.upper(), ref.broker_instrument_id
        else:
            contract = await self.contracts.resolve(ref)
            exchange, instrument_id = contract.exchange, contract.token
        item = place_item(exchange=exchange, instrument_id=instrument_id, side=request.side, order_type=request.type,
                          quantity=request.quantity, product=request.product, tif=request.time_in_force,
                          limit_price=request.limit_price, stop_price=request.stop_price,
                          client_order_id=request.client_order_id, device_id=self.device_id)
        return await self._place_item(request.account, item, request.client_order_id, "order")

    async def _place_item(self, account: AccountKey, item: dict[str, Any], client_order_id: str, what: str) -> Order:
        """POST orders/placeorder with ``item`` once, then the order read back from orders/book. A
        failure after the request may have reached Alice Blue (timeout, reset, 5xx, an unreadable
        answer, a read-back that fails) is reconciled by ``orderTag`` within the visibility delay
        (:func:`..placement.send_once`); an order found REJECTED raises as a refusal."""
        async def send() -> Order:
            items = await self.client.orders_placeorder([item])
            return await self._read_back(account, self._placed(items, what))

        async def lookup() -> Order | None:
            return await self.fetch_order_by_client_id(account, client_order_id)

        return self._rejected(await send_once(send, lookup, client_order_id=client_order_id,
                                              connection=self.connection, visibility=self.visibility))

    async def cancel_order(self, key: OrderKey) -> Order:
        """POST orders/cancel, then the order from orders/book (``OPEN`` until the exchange confirms).
        Raises ``OrderNotFound`` (EC997) or ``InvalidOrder`` (not cancellable)."""
        await self._account_number(AccountKey(key.connection, key.account_number))
        await self.client.orders_cancel(key.broker_order_id)
        return await self.fetch_order(key)

    async def modify_order(self, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """POST orders/modify with the order's current values and ``update`` applied, then the order
        from orders/book. Raises ``OrderNotFound`` (EC999), ``InvalidOrder`` (EC993, an off-tick price)."""
        current = await self.fetch_order(key)
        await self.client.orders_modify(modify_body(current, update, self.device_id))
        return await self.fetch_order(key)

    async def square_off_position(self, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """Close ``quantity`` of ``position``: at market through POST orders/positions/sqroff (after a
        GET orders/book that lets a lost answer be reconciled), with a limit through a placement of
        the opposite order (``orderTag`` = ``client_order_id``).

        Raises:
            InvalidInput: a flat position, a product or order type Alice Blue cannot square off.
            InvalidOrder / OrderNotFound: the broker refused (EC868: no such open quantity).
            OrderOutcomeUnknown: the answer was lost and no single new order matches.
        """
        account = position.account_key
        await self._account_number(account)
        listing = wire_listing(position)
        qty = abs(quantity) if quantity else abs(position.quantity)
        if order_type is OrderType.LIMIT:
            item = place_item(exchange=listing[0], instrument_id=listing[1], side=closing_side(position),
                              order_type=OrderType.LIMIT, quantity=qty, product=position.product,
                              tif=TimeInForce.DAY, limit_price=limit_price, stop_price=None,
                              client_order_id=client_order_id, device_id=self.device_id)
            return await self._place_item(account, item, client_order_id, "square-off")
        if order_type is not OrderType.MARKET:
            raise InvalidInput("Alice Blue squares off at market or with a limit", field="type")
        item = sqroff_item(position, listing, qty, self.device_id)
        before = book_ids(await self.client.orders_book())
        try:
            items = await self.client.orders_positions_sqroff([item])
        except OperationFailed as exc:
            if not exc.sent or isinstance(exc, RateLimitExceeded):
                raise  # never sent: nothing was squared off
            spec = SquareOffSpec(listing[0], listing[1], position.product or Product.LONGTERM, closing_side(position),
                                 qty)
            return await self._reconcile_square_off(account, before, spec, client_order_id)
        return await self._read_back(account, self._placed(items, "square-off"))

    async def _reconcile_square_off(self, account: AccountKey, before: frozenset[str], spec: SquareOffSpec,
                                    client_order_id: str) -> Order:
        """The one order new in orders/book since ``before`` that matches ``spec``; else
        ``OrderOutcomeUnknown`` (none, several, or the book cannot be read)."""
        try:
            found = square_off_candidates(await self.fetch_orders(account), before, spec)
            why = "no new order matches it" if not found else f"{len(found)} new orders match it"
        except GatewayError as exc:
            found, why = [], f"orders/book could not be read ({exc.message})"
        if len(found) != 1:
            raise OrderOutcomeUnknown(f"the square-off answer was lost and {why} (sqroff carries no orderTag)",
                                      client_order_id=client_order_id, connection=self.connection)
        return self._rejected(found[0])

    async def convert_position(self, position: Position, to_product: Product, quantity: Decimal | None) -> Position:
        """POST conversion (``MIS`` ⇄ ``CNC`` ⇄ ``MTF`` of the day's quantity), then the position
        in its new product. Raises ``OrderNotFound`` (EC868), ``InvalidOrder`` (EC869 / EC870)."""
        account = position.account_key
        await self._account_number(account)
        qty = abs(quantity) if quantity else abs(position.quantity)
        wire_quantity(qty)
        await self.client.conversion(conversion_body(position, wire_listing(position), to_product, qty))
        for p in await self.fetch_positions(account):
            if p.key.instrument_id == position.key.instrument_id and p.product is to_product:
                return p
        raise BadResponse("the converted position is not in the position book", connection=self.connection)
