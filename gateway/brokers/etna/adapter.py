"""The ETNA Trader adapter: build → call → parse for every BrokerAdapter verb.

Accounts are ``GET v1.0/users/{userId}/accounts`` (``@me`` unless the credential ``user_id`` is
set); positions and orders are read page by page to the end (page sizes 99 and 100, options
``positions_page_size`` / ``orders_page_size``), with what the filter allows pushed down as an
ETNA ``filter`` expression (:mod:`.filters`) and the whole filter applied locally after. Orders
are sent with ``ClientId`` = the request's ``client_order_id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...config import ConnectionConfig
from ...domain.enums import Broker, ConnectionStatus, OrderSide, OrderType, TimeInForce
from ...domain.errors import (
    AuthenticationError,
    BadResponse,
    BrokerNotAvailable,
    GatewayError,
    InvalidInput,
    NotSupported,
    OperationFailed,
    OrderOutcomeUnknown,
    RateLimitExceeded,
    RequestTimeout,
)
from ...domain.keys import AccountKey, OrderKey
from ...domain.models import Account, Order, Position
from ...domain.requests import InstrumentRef, OrderFilter, OrderRequest, OrderUpdate, PositionFilter
from ..base import BaseAdapter, Capabilities, PlaceOutcome
from ..http import HttpResponse
from .client import EtnaClient
from .filters import order_filter, position_filter, string_literal
from .parsing import (
    SIDE_TO_WIRE,
    TIF_TO_WIRE,
    TYPE_TO_WIRE,
    instrument_from_position,
    parse_account,
    parse_order,
    parse_page,
    parse_position,
)
from .securities import SecurityMap

__all__ = ["EtnaAdapter"]

_MAX_PAGES = 10_000
Fetch = Callable[..., Awaitable[HttpResponse]]


def _wire_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number for a request body (ETNA takes numbers, not strings)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _wire_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EtnaAdapter(BaseAdapter):
    """ETNA Trader Web API. Credentials ``app_key``, ``username``, ``password`` (optional ``pin``,
    ``verification_code``, ``user_id``); options ``token_lifetime`` (s), ``positions_page_size``,
    ``orders_page_size``."""

    broker = Broker.ETNA
    capabilities = Capabilities(modify_order=True, order_types=frozenset(OrderType), fractional_quantities=False)

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        self.client = EtnaClient(config)
        self.securities = SecurityMap(self.client)
        self.user_id = config.credential("user_id") or "@me"
        self.positions_page_size = int(config.options.get("positions_page_size", 99))
        self.orders_page_size = int(config.options.get("orders_page_size", 100))

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Log in; a broker that is down or refuses leaves the adapter DOWN / UNAUTHENTICATED."""
        try:
            await self.client.tokens.ensure()
            self.status = ConnectionStatus.UP
        except AuthenticationError:
            self.status = ConnectionStatus.UNAUTHENTICATED
        except GatewayError:
            self.status = ConnectionStatus.DOWN

    async def close(self) -> None:
        await self.client.close()

    def upstream_calls(self) -> int:
        return self.client.calls

    # -- reads ----------------------------------------------------------------------------
    async def fetch_accounts(self) -> list[Account]:
        """The user's trading accounts (``GET v1.0/users/{userId}/accounts``)."""
        response = await self.client.get_user_accounts(self.user_id)
        if not isinstance(response.body, list):
            raise BadResponse("ETNA accounts answer is not an array", connection=self.connection)
        return [parse_account(raw, self.connection) for raw in response.body]

    async def _all_pages(self, fetch: Fetch, account: str, page_size: int, expression: str | None, *,
                         desc: bool = False, stop: Callable[[dict[str, Any]], bool] | None = None
                         ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for number in range(_MAX_PAGES):
            response = await fetch(account, page_number=number, page_size=page_size, sort_field="Id", desc=desc,
                                   filter=expression)
            page, more = parse_page(response.body, page_size)
            items.extend(page)
            if not more or not page or (stop is not None and any(stop(raw) for raw in page)):
                break
        return items

    async def fetch_positions(self, account: AccountKey, filter: PositionFilter | None = None) -> list[Position]:
        """Positions of ``account`` (``GET v1.0/accounts/{id}/positions``, every page)."""
        push = position_filter(filter)
        if push.empty:
            return []
        raws = await self._all_pages(self.client.get_positions, account.account_number, self.positions_page_size,
                                     push.expression)
        now = datetime.now(UTC)
        positions = []
        for raw in raws:
            self.securities.learn(instrument_from_position(raw))
            positions.append(parse_position(raw, self.connection, account.account_number, now))
        return [p for p in positions if filter is None or filter.matches(p)]

    async def _parse_orders(self, account_number: str, raws: list[dict[str, Any]]) -> list[Order]:
        await self.securities.resolve(str(raw["SecurityId"]) for raw in raws)
        return [parse_order(raw, self.connection, account_number, self.securities.get(str(raw["SecurityId"])))
                for raw in raws]

    async def fetch_orders(self, account: AccountKey, filter: OrderFilter | None = None) -> list[Order]:
        """Orders of ``account`` (``GET v1.0/accounts/{id}/orders``, every page, oldest first)."""
        push = order_filter(filter)
        if push.empty:
            return []
        raws = await self._all_pages(self.client.get_orders, account.account_number, self.orders_page_size,
                                     push.expression)
        orders = await self._parse_orders(account.account_number, raws)
        return [o for o in orders if filter is None or filter.matches(o)]

    async def fetch_order(self, key: OrderKey) -> Order:
        """One order (``GET v1.0/accounts/{id}/orders/{orderId}``); OrderNotFound when unknown."""
        response = await self.client.get_order(key.account_number, key.broker_order_id)
        return (await self._parse_orders(key.account_number, [self._object(response)]))[0]

    async def fetch_order_by_client_id(self, account: AccountKey, client_order_id: str,
                                       hint: OrderRequest | None = None) -> Order | None:
        """The order sent with ``ClientId`` = ``client_order_id``: newest pages first, narrowed to
        the hint's symbol when there is one; ``None`` when there is no such order."""
        expression = None
        if hint is not None and hint.instrument.symbol:
            expression = f"Symbol = {string_literal(hint.instrument.symbol)}"

        def found(raw: dict[str, Any]) -> bool:
            return str(raw.get("ClientId")) == client_order_id

        raws = await self._all_pages(self.client.get_orders, account.account_number, self.orders_page_size,
                                     expression, desc=True, stop=found)
        match = [raw for raw in raws if found(raw)]
        if not match:
            return None
        return (await self._parse_orders(account.account_number, match[:1]))[0]

    # -- writes ---------------------------------------------------------------------------
    def _object(self, response: HttpResponse) -> dict[str, Any]:
        if not isinstance(response.body, dict):
            raise BadResponse("ETNA answered without an order resource", connection=self.connection)
        return response.body

    async def _place(self, account: AccountKey, body: dict[str, Any], client_order_id: str,
                     hint: OrderRequest | None) -> Order:
        """``POST …/orders`` once; a lost answer (timeout, reset, 5xx) is reconciled by ``ClientId``:
        the order found is returned, else OrderOutcomeUnknown."""
        try:
            response = await self.client.post_orders(account.account_number, body)
        except RateLimitExceeded:
            raise  # refused before it was processed: nothing to reconcile
        except (RequestTimeout, BrokerNotAvailable) as exc:
            try:
                found = await self.fetch_order_by_client_id(account, client_order_id, hint)
            except OperationFailed:
                found = None
            if found is not None:
                return found
            raise OrderOutcomeUnknown(f"ETNA order {client_order_id} outcome unknown: {exc.message}",
                                      client_order_id=client_order_id, connection=self.connection) from exc
        return (await self._parse_orders(account.account_number, [self._object(response)]))[0]

    async def _symbol(self, request: OrderRequest) -> str:
        ref = request.instrument
        if ref.symbol:
            return ref.symbol
        if ref.broker_instrument_id:
            await self.securities.resolve([ref.broker_instrument_id])
            symbol = self.securities.get(ref.broker_instrument_id).symbol
            if symbol:
                return symbol
        raise InvalidInput("ETNA orders need a symbol or an ETNA SecurityId", field="instrument",
                           connection=self.connection)

    async def create_order(self, request: OrderRequest) -> PlaceOutcome:
        """Place an order (``POST v1.0/accounts/{id}/orders``); answers the order as ``PendingNew``.

        Raises InvalidOrder (422 validation), NotSupported (allocation groups), OrderOutcomeUnknown
        (the answer was lost and no order with the ClientId was found).
        """
        if request.account is None:
            raise NotSupported("ETNA has no allocation groups", connection=self.connection)
        body: dict[str, Any] = {
            "Symbol": await self._symbol(request), "ClientId": request.client_order_id,
            "Type": TYPE_TO_WIRE[request.type], "Side": SIDE_TO_WIRE[request.side],
            "TimeInforce": TIF_TO_WIRE[request.time_in_force], "Quantity": _wire_number(request.quantity),
        }
        if request.limit_price is not None:
            body["Price"] = _wire_number(request.limit_price)
        if request.stop_price is not None:
            body["StopPrice"] = _wire_number(request.stop_price)
        if request.expires_at is not None:
            body["ExpireDate"] = _wire_time(request.expires_at)
        return await self._place(request.account, body, request.client_order_id, request)

    async def cancel_order(self, key: OrderKey) -> Order:
        """Cancel (``DELETE v1.0/accounts/{id}/orders/{orderId}`` → 204), then read the order back.

        Raises InvalidOrder when ETNA answers 409 (filled, cancelled already), OrderNotFound.
        """
        await self.client.delete_order(key.account_number, key.broker_order_id)
        return await self.fetch_order(key)

    async def modify_order(self, key: OrderKey, update: OrderUpdate) -> PlaceOutcome:
        """Replace (``PUT v1.0/accounts/{id}/orders/{orderId}``) with the changed fields and the
        current values of the others. ETNA cannot change the time in force (NotSupported)."""
        current = self._object(await self.client.get_order(key.account_number, key.broker_order_id))
        if update.time_in_force is not None and TIF_TO_WIRE[update.time_in_force] != current.get("TimeInForce"):
            raise NotSupported("ETNA cannot change an order's time in force", connection=self.connection)
        body: dict[str, Any] = {"Id": current["Id"], "Quantity": current.get("Quantity")}
        if update.quantity is not None:
            body["Quantity"] = _wire_number(update.quantity)
        if update.limit_price is not None or current.get("Price"):
            body["Price"] = _wire_number(update.limit_price) if update.limit_price is not None else current["Price"]
        if update.stop_price is not None or current.get("StopPrice"):
            body["StopPrice"] = (_wire_number(update.stop_price) if update.stop_price is not None
                                 else current["StopPrice"])
        if update.expires_at is not None:
            body["ExpireDate"] = _wire_time(update.expires_at)
        if current.get("ClientId"):
            body["ClientId"] = current["ClientId"]
        response = await self.client.put_order(key.account_number, key.broker_order_id, body)
        return (await self._parse_orders(key.account_number, [self._object(response)]))[0]

    async def square_off_position(self, position: Position, quantity: Decimal, order_type: OrderType,
                                  limit_price: Decimal | None, client_order_id: str) -> PlaceOutcome:
        """Close ``quantity`` of ``position`` with the opposite order: ``Sell`` for a long,
        ``BuyToCover`` for a short; day order."""
        if quantity <= 0 or quantity > abs(position.quantity):
            raise InvalidInput(f"quantity must be in (0, {abs(position.quantity)}]", field="quantity",
                               connection=self.connection)
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidInput("square-off orders are MARKET or LIMIT", field="type", connection=self.connection)
        if order_type is OrderType.LIMIT and limit_price is None:
            raise InvalidInput("a LIMIT square-off needs a limit price", field="limitPrice", connection=self.connection)
        symbol = position.instrument.symbol
        if not symbol:
            raise InvalidInput("the position has no symbol", field="positionId", connection=self.connection)
        side = "Sell" if position.quantity > 0 else "BuyToCover"
        body: dict[str, Any] = {"Symbol": symbol, "ClientId": client_order_id, "Type": TYPE_TO_WIRE[order_type],
                                "Side": side, "TimeInforce": TIF_TO_WIRE[TimeInForce.DAY],
                                "Quantity": _wire_number(quantity)}
        if order_type is OrderType.LIMIT and limit_price is not None:
            body["Price"] = _wire_number(limit_price)
        hint = OrderRequest(instrument=InstrumentRef(symbol=symbol), side=OrderSide.SELL if position.quantity > 0
                            else OrderSide.BUY, type=order_type, quantity=quantity, client_order_id=client_order_id,
                            account=position.account_key)
        return await self._place(position.account_key, body, client_order_id, hint)
