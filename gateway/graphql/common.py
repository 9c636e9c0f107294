"""Types shared by every domain package: Node, Money, Instrument, PageInfo, cursors, UserErrors."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

import strawberry

from ..brokers.base import Page, WindowQuery
from ..domain import models
from ..domain.errors import GatewayError
from ..domain.errors import InvalidInput as InvalidInputError
from ..domain.money import scaled_amount, scaled_price
from .enums import AssetClassEnum, ErrorCodeEnum
from .scalars import Decimal, ScaledDecimal

__all__ = ["BrokerUnavailable", "InvalidInput", "Instrument", "MaxAge", "Money", "Node", "NotFound", "NotSupported",
           "OrderOutcomeUnknown", "OrderRejected", "PageInfo", "UserError", "check_max_age", "decode_cursor",
           "encode_cursor", "money", "price", "window"]


@strawberry.interface(description="An object with an opaque global id, resolvable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id; carries the connection and the broker's ids.")


@strawberry.type(description=(
    "An amount of money: a decimal amount in an ISO 4217 currency. Amounts (cash, values, cost, profit and "
    "loss) carry the currency's minor unit (2 decimals for EUR, USD, INR; 0 for JPY); prices per unit carry "
    "the tick precision of the currency's venues (EUR 4; INR 2; USD 2 from 1.00 up, 4 below). Every amount "
    "of one kind in one currency has the same scale; rounding is half-even."))
class Money:
    amount: Decimal = strawberry.field(
        description="Amount in currency units (EUR, not cents), at the scale the type's description gives.")
    currency: str = strawberry.field(description="ISO 4217 currency code.")


def money(value: models.Money | None) -> Money | None:
    """An amount (cash, value, cost, P&L) as it leaves the gateway: at its currency's minor unit."""
    if value is None:
        return None
    return Money(amount=ScaledDecimal(scaled_amount(value.amount, value.currency)), currency=value.currency)


def price(value: models.Money | None) -> Money | None:
    """A price per unit as it leaves the gateway: at its currency's tick precision."""
    if value is None:
        return None
    return Money(amount=ScaledDecimal(scaled_price(value.amount, value.currency)), currency=value.currency)


@strawberry.type(description="A tradable instrument as the broker lists it.")
class Instrument:
    symbol: str | None = strawberry.field(description="Ticker / trading symbol as the broker lists it.")
    isin: str | None = strawberry.field(description=(
        "ISIN (ISO 6166) where the broker reports it (lemon, Alice Blue; ETNA where its security look-up "
        "sends one). IBKR reports none: an IBKR item shows the ISIN the caller named (an order placed by ISIN, "
        "or a `positions` / `orders` filter by ISIN, which matches IBKR items through the conids IBKR lists "
        "for that ISIN), else null."))
    name: str | None = strawberry.field(description="Instrument name.")
    exchange: str | None = strawberry.field(
        description="MIC where known (XMUN, XNAS, ...), else the broker's venue code (NSE, BSE).")
    currency: str | None = strawberry.field(description="Trading currency (ISO 4217).")
    asset_class: AssetClassEnum | None = strawberry.field(description="Kind of instrument.")
    broker_instrument_id: str | None = strawberry.field(
        description="The broker's instrument id: IBKR conid, ETNA SecurityId, Alice Blue instrumentId, lemon ISIN.")

    @classmethod
    def from_domain(cls, i: models.Instrument) -> Instrument:
        return cls(symbol=i.symbol, isin=i.isin, name=i.name, exchange=i.exchange, currency=i.currency,
                   asset_class=AssetClassEnum(i.asset_class.value) if i.asset_class else None,
                   broker_instrument_id=i.broker_instrument_id)


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item of the page; pass it as `after`.")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, number = text.partition(":")
        offset = int(number)
    except Exception:
        raise InvalidInputError("not a valid cursor", field="after") from None
    if kind != "offset" or offset < 0:
        raise InvalidInputError("not a valid cursor", field="after")
    return offset


#: the ``maxAge`` argument of order and position fields
MaxAge = Annotated[float | None, strawberry.argument(
    description="Oldest answer accepted, in seconds: a read may be served from the connection's snapshot when it is "
                "younger (see `asOf`); 0 reads the broker now. Default: the connection's setting, which is the "
                "broker's pacing window for the endpoint (IBKR live orders: 5 s) and 0 elsewhere.")]


def check_max_age(value: float | None) -> float | None:
    """``maxAge`` checked: ``None`` or 0‥86 400 seconds; ``InvalidInput`` otherwise."""
    if value is None:
        return None
    if not 0 <= value <= 86_400:
        raise InvalidInputError("maxAge must be between 0 and 86400 seconds", field="maxAge")
    return float(value)


def window(first: int | None, after: str | None, max_page_size: int) -> tuple[int, int]:
    """``(offset, limit)`` of a Relay page; ``InvalidInput`` for ``first`` outside 0..max."""
    limit = 50 if first is None else first
    if limit < 0 or limit > max_page_size:
        raise InvalidInputError(f"first must be between 0 and {max_page_size}", field="first")
    offset = decode_cursor(after) + 1 if after else 0
    return offset, limit


def selects(info: Any, name: str) -> bool:
    """Whether the current field's selection (through fragments) names the subfield ``name``
    (as written in the document, e.g. ``totalCount``; ``@skip`` / ``@include`` are not evaluated).

    Walks graphql-core's AST of the field (``info._raw_info``) rather than Strawberry's
    ``selected_fields``, which converts the whole selection below the field, arguments included,
    on every call (a third of a positions page's resolver time)."""
    from graphql import FieldNode, FragmentSpreadNode

    raw = info._raw_info
    fragments = raw.fragments
    seen: set[str] = set()

    def walk(selection_set: Any) -> bool:
        for sel in selection_set.selections if selection_set is not None else ():
            if isinstance(sel, FieldNode):
                if sel.name.value == name:
                    return True
            elif isinstance(sel, FragmentSpreadNode):
                spread = sel.name.value
                if spread not in seen and spread in fragments:
                    seen.add(spread)
                    if walk(fragments[spread].selection_set):
                        return True
            elif walk(sel.selection_set):  # an inline fragment
                return True
        return False

    return any(walk(node.selection_set) for node in raw.field_nodes)


def page_info(offset: int, count: int, total: int) -> PageInfo:
    return PageInfo(has_next_page=offset + count < total, has_previous_page=offset > 0,
                    start_cursor=encode_cursor(offset) if count else None,
                    end_cursor=encode_cursor(offset + count - 1) if count else None)


def relay_parts(page: Page, offset: int, node: Callable[[Any], Any], edge: Callable[..., Any]) -> dict[str, Any]:
    """The fields of a Relay connection type for ``page`` starting at ``offset``."""
    nodes = [node(item) for item in page.items]
    return {"nodes": nodes, "edges": [edge(cursor=encode_cursor(offset + i), node=n) for i, n in enumerate(nodes)],
            "page_info": page_info(offset, len(nodes), page.total), "total_count": page.total}


async def load_page(info: Any, loader: Any, query: WindowQuery) -> Page:
    """``loader``'s page for ``query``; an empty page and an ``errors[]`` entry when the broker fails."""
    try:
        page: Page = await loader.load(query)
    except GatewayError as exc:
        info.context.report(exc.with_connection(query.account.connection), info)
        return Page([], 0)
    return page


@strawberry.interface(description="An expected failure of a mutation.")
class UserError:
    code: ErrorCodeEnum = strawberry.field(description="Machine-readable code.")
    message: str = strawberry.field(description="Human-readable explanation.")


@strawberry.type(description="The input is invalid; nothing was sent to the broker.")
class InvalidInput(UserError):
    field: str | None = strawberry.field(description="The input field at fault (dotted path), if one is.")


@strawberry.type(description="No such object, or it is not visible to the caller.")
class NotFound(UserError):
    pass


@strawberry.type(description="The broker has no such operation.")
class NotSupported(UserError):
    pass


@strawberry.type(description="The broker refused the request.")
class OrderRejected(UserError):
    broker_code: str | None = strawberry.field(description="The broker's own error code.")
    broker_message: str | None = strawberry.field(description="The broker's own error message.")


@strawberry.type(description="The order request was sent but its outcome is unknown; nothing was re-sent.")
class OrderOutcomeUnknown(UserError):
    client_order_id: str = strawberry.field(description="Client order id to look the order up by later.")


@strawberry.type(description="The broker could not be reached, failed, or rate-limited the request.")
class BrokerUnavailable(UserError):
    retry_after_seconds: int | None = strawberry.field(description="Seconds to wait before retrying, if known.")
