"""Order-status events and their JSON form (what the Redis stream carries).

An :class:`OrderEvent` holds the order after the change; ``raw`` broker payloads are not carried.
Decimals travel as strings and times as ISO 8601, so nothing becomes a float on the way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..domain.enums import AssetClass, OrderSide, OrderStatus, OrderType, Product, TimeInForce
from ..domain.keys import AllocationGroupKey, OrderKey
from ..domain.models import Instrument, Money, Order

__all__ = ["OrderEvent", "decode_event", "encode_event"]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One status change of one order.

    ``at`` is when the change happened as the broker reports it (the order's update time: fill, cancel,
    rejection time) or, when the broker reports none, ``received_at``: when the gateway received the
    change (both UTC). ``event_id`` is the bus's id (Redis stream id form ``<ms>-<seq>``);
    ``missed_events`` is set on the first event of a resume that reached beyond the retention window.
    """

    order: Order
    previous_status: OrderStatus | None
    status: OrderStatus
    at: datetime
    event_id: str = ""
    missed_events: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None  # None: same as ``at`` (events written before the field existed)

    @property
    def at_from_broker(self) -> bool:
        """Whether ``at`` is the broker's time for the change (not the gateway's receipt time)."""
        return self.received_at is not None and self.order.updated_at is not None and self.at == self.order.updated_at

    def with_id(self, event_id: str) -> OrderEvent:
        return replace(self, event_id=event_id)


def _money(m: Money | None) -> list[str] | None:
    return None if m is None else [str(m.amount), m.currency]


def _unmoney(v: list[str] | None) -> Money | None:
    return None if v is None else Money(Decimal(v[0]), v[1])


def _time(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _untime(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def encode_event(event: OrderEvent) -> str:
    o = event.order
    i = o.instrument
    body = {
        "key": [o.key.connection, o.key.account_number, o.key.broker_order_id],
        "instrument": [i.symbol, i.isin, i.name, i.exchange, i.currency,
                       i.asset_class.value if i.asset_class else None, i.broker_instrument_id],
        "side": o.side.value, "type": o.type.value, "quantity": str(o.quantity), "status": o.status.value,
        "broker_status": o.broker_status, "filled": str(o.filled_quantity), "limit": _money(o.limit_price),
        "stop": _money(o.stop_price), "avg": _money(o.average_fill_price), "tif": o.time_in_force.value,
        "expires_at": _time(o.expires_at), "created_at": _time(o.created_at), "updated_at": _time(o.updated_at),
        "first_seen": o.created_at_first_seen, "client_order_id": o.client_order_id,
        "group": [o.allocation_group.connection, o.allocation_group.name] if o.allocation_group else None,
        "account_known": o.account_known, "notes": o.notes, "product": o.product.value if o.product else None,
        "previous": event.previous_status.value if event.previous_status else None,
        "event_status": event.status.value, "at": event.at.isoformat(),
        "received_at": _time(event.received_at),
    }
    return json.dumps(body, separators=(",", ":"))


def decode_event(text: str | bytes, event_id: str = "") -> OrderEvent:
    b = json.loads(text)
    ins = b["instrument"]
    order = Order(
        key=OrderKey(*b["key"]),
        instrument=Instrument(symbol=ins[0], isin=ins[1], name=ins[2], exchange=ins[3], currency=ins[4],
                              asset_class=AssetClass(ins[5]) if ins[5] else None, broker_instrument_id=ins[6]),
        side=OrderSide(b["side"]), type=OrderType(b["type"]), quantity=Decimal(b["quantity"]),
        status=OrderStatus(b["status"]), broker_status=b["broker_status"], filled_quantity=Decimal(b["filled"]),
        limit_price=_unmoney(b["limit"]), stop_price=_unmoney(b["stop"]), average_fill_price=_unmoney(b["avg"]),
        time_in_force=TimeInForce(b["tif"]), expires_at=_untime(b["expires_at"]), created_at=_untime(b["created_at"]),
        created_at_first_seen=bool(b.get("first_seen", False)),
        updated_at=_untime(b["updated_at"]), client_order_id=b["client_order_id"],
        allocation_group=AllocationGroupKey(*b["group"]) if b["group"] else None,
        account_known=b["account_known"], notes=b["notes"],
        product=Product(b["product"]) if b.get("product") else None,
    )
    return OrderEvent(order=order, previous_status=OrderStatus(b["previous"]) if b["previous"] else None,
                      status=OrderStatus(b["event_status"]), at=datetime.fromisoformat(b["at"]), event_id=event_id,
                      received_at=_untime(b.get("received_at")))
