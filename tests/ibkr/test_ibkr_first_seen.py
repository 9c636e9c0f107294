"""``createdAt`` of IBKR orders: the gateway's first sight, bounded by the order's own last time,
kept for later reads and marked (gateway/brokers/ibkr/first_seen.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.brokers.ibkr.first_seen import FirstSeen
from gateway.domain import Instrument, Order, OrderKey, OrderSide, OrderStatus, OrderType

T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def _order(order_id: str, updated_at: datetime | None = None) -> Order:
    return Order(key=OrderKey("ib", "DU1", order_id), instrument=Instrument(broker_instrument_id="265598"),
                 side=OrderSide.BUY, type=OrderType.LIMIT, quantity=Decimal(1), status=OrderStatus.SUBMITTED,
                 broker_status="Submitted", updated_at=updated_at)


def test_first_sight_is_kept_for_later_reads_and_marked() -> None:
    seen = FirstSeen()
    [first] = seen.stamp([_order("1")], now=T0)
    assert first.created_at == T0 and first.created_at_first_seen
    [again] = seen.stamp([_order("1")], now=T0 + timedelta(minutes=5))
    assert again.created_at == T0  # never moves


def test_an_order_last_changed_before_its_first_sight_was_created_by_then() -> None:
    seen = FirstSeen()
    earlier = T0 - timedelta(days=3)
    [order] = seen.stamp([_order("2", updated_at=earlier)], now=T0)
    assert order.created_at == earlier


def test_a_broker_creation_time_is_left_alone_and_the_registry_is_bounded() -> None:
    seen = FirstSeen(capacity=2)
    own = _order("3")
    own.created_at = T0 - timedelta(hours=1)
    [kept] = seen.stamp([own], now=T0)
    assert kept.created_at == T0 - timedelta(hours=1) and not kept.created_at_first_seen
    seen.stamp([_order(str(n)) for n in range(10, 15)], now=T0)
    assert len(seen) == 2
