"""Validation of order input before anything is sent upstream.

Every rule raises ``InvalidInput`` with the offending input ``field``; the broker is never called
for input the gateway can tell is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ...brokers.base import Capabilities
from ...domain.enums import OrderType, TimeInForce
from ...domain.errors import InvalidInput
from ...domain.isin import is_valid_isin
from ...domain.requests import InstrumentRef

__all__ = ["check_expiry", "check_instrument", "check_prices", "check_quantity", "check_text"]


def check_instrument(ref: InstrumentRef) -> InstrumentRef:
    if not (ref.isin or ref.symbol or ref.broker_instrument_id):
        raise InvalidInput("name the instrument by isin, symbol or brokerInstrumentId", field="instrument")
    if ref.isin is not None:
        isin = ref.isin.strip().upper()
        if not is_valid_isin(isin):
            raise InvalidInput(f"{ref.isin!r} is not a valid ISIN (format or check digit)", field="instrument.isin")
        ref = InstrumentRef(isin=isin, symbol=ref.symbol, exchange=ref.exchange,
                            broker_instrument_id=ref.broker_instrument_id)
    return ref


def check_quantity(quantity: Decimal, caps: Capabilities, field: str = "quantity") -> None:
    if not quantity.is_finite() or quantity <= 0:
        raise InvalidInput("quantity must be greater than 0", field=field)
    if not caps.fractional_quantities and quantity != quantity.to_integral_value():
        raise InvalidInput("this broker trades whole units only", field=field)


def check_prices(order_type: OrderType, limit: Decimal | None, stop: Decimal | None) -> None:
    for name, value in (("limitPrice", limit), ("stopPrice", stop)):
        if value is not None and (not value.is_finite() or value <= 0):
            raise InvalidInput(f"{name} must be greater than 0", field=name)
    needs_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit and limit is None:
        raise InvalidInput(f"a {order_type.name} order needs limitPrice", field="limitPrice")
    if needs_stop and stop is None:
        raise InvalidInput(f"a {order_type.name} order needs stopPrice", field="stopPrice")
    if not needs_limit and limit is not None:
        raise InvalidInput(f"a {order_type.name} order takes no limitPrice", field="limitPrice")
    if not needs_stop and stop is not None:
        raise InvalidInput(f"a {order_type.name} order takes no stopPrice", field="stopPrice")


def check_expiry(tif: TimeInForce, expires_at: datetime | None, caps: Capabilities) -> TimeInForce:
    """The effective time in force: ``GTD`` when ``expiresAt`` is given."""
    if expires_at is None:
        if tif is TimeInForce.GTD:
            raise InvalidInput("GTD needs expiresAt", field="expiresAt")
        return tif
    if expires_at.tzinfo is None:
        raise InvalidInput("expiresAt needs a UTC offset", field="expiresAt")
    now = datetime.now(UTC)
    if expires_at <= now:
        raise InvalidInput("expiresAt must be in the future", field="expiresAt")
    if caps.max_expiry_days is not None and expires_at > now + timedelta(days=caps.max_expiry_days):
        raise InvalidInput(f"expiresAt may be at most {caps.max_expiry_days} days ahead", field="expiresAt")
    if tif not in (TimeInForce.DAY, TimeInForce.GTD):
        raise InvalidInput(f"expiresAt does not go with {tif.name}", field="expiresAt")
    return TimeInForce.GTD


def check_text(value: str | None, field: str, max_length: int) -> None:
    if value is not None and (len(value) > max_length or (field == "idempotencyKey" and not value.strip())):
        raise InvalidInput(f"{field} must be 1 to {max_length} characters", field=field)
