"""lemon.markets Trading API v1 wire shapes: envelopes, numbers, timestamps, order and position
objects (shared/brokers/lemon.md §3–§6, §9)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.responses import JSONResponse

from ..engine import SimOrder, SimPosition, SimStatus
from ..instruments import SimInstrument

__all__ = ["STATUS_WORDS", "envelope", "error", "fmt_time", "instrument_json", "money", "order_json", "position_json"]

#: engine status → lemon's word (SDK ``OrderStatus`` spellings)
STATUS_WORDS: dict[SimStatus, str] = {
    SimStatus.INACTIVE: "inactive",
    SimStatus.PENDING_NEW: "activated",
    SimStatus.WORKING: "open",
    SimStatus.PARTIALLY_FILLED: "in_progress",
    SimStatus.FILLED: "executed",
    SimStatus.CANCEL_PENDING: "canceling",
    SimStatus.CANCELED: "canceled",
    SimStatus.EXPIRED: "expired",
    SimStatus.REJECTED: "rejected",
}

CHARGE = 20000  # 2.00 EUR per order, as in the fixtures


def fmt_time(value: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmm+00:00`` (three-digit milliseconds, ``+00:00``)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+00:00"


def fmt_date(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def money(value: Decimal | None) -> int | None:
    """Currency units → lemon's integer hundredths of a cent (``1.00`` → ``10000``)."""
    if value is None:
        return None
    return int((value * 10000).quantize(Decimal(1), ROUND_HALF_UP))


def now() -> str:
    return fmt_time(datetime.now(UTC)) or ""


def envelope(results: Any = None, *, status_code: int = 200, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"time": now(), "status": "ok", "mode": "paper"}
    if results is not None:
        body["results"] = results
    body.update(extra)
    return JSONResponse(body, status_code=status_code)


#: error code → (HTTP status, message) — statuses per lemon.md §9
ERRORS: dict[str, tuple[int, str]] = {
    "invalid_query": (400, "invalid query"),
    "unauthorized": (401, "authorization header missing or invalid"),
    "token_invalid": (401, "the API key is revoked or the user is deleted/suspended"),
    "order_not_found": (404, "order does not exist"),
    "instrument_not_found": (404, "instrument does not exist"),
    "account_insufficient_funds": (422, "insufficient funds to place or activate order"),
    "insufficient_holdings": (422, "insufficient holdings to sell"),
    "order_not_inactive": (409, "order is not inactive"),
    "order_not_terminated": (409, "Order can't be cancelled if it is not terminating or terminated state"),
    "order_idempotency_violation": (400, "Same idempotency has been used within current 7 day period"),
    "order_expiration_date_invalid": (400, "expiration date must be in the future and at most 30 days ahead"),
    "instrument_not_tradable": (400, "instrument is not tradable"),
    "order_limit_exceeded": (400, "daily limit of orders exceeded"),
    "order_total_price_limit_exceeded": (
        400, "cannot place/activate buy order if estimated total price is greater than 25k Euro"),
    "pin_missing": (400, "pin is required to activate this order"),
    "pin_invalid": (403, "pin is invalid"),
    "rate_limit_exceeded": (429, "rate limit exceeded, retry after the time given in the Retry-After header"),
    "internal_error": (500, "internal error"),
    "trading_blocked": (503, "trading is blocked"),
}


def error(code: str, message: str | None = None, *, status: int | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """lemon's error envelope (docs /error-handling)."""
    default_status, default_message = ERRORS.get(code, (400, code))
    body = {"time": now(), "mode": "paper", "status": "error", "error_code": code,
            "error_message": message or default_message}
    return JSONResponse(body, status_code=status or default_status, headers=headers)


def regulatory_information(total: Decimal) -> dict[str, Any]:
    pct = f"{(Decimal(CHARGE) / (money(total) or 1) * 100).quantize(Decimal('0.01'))}%"
    return {
        "costs_entry": CHARGE, "costs_entry_pct": pct,
        "costs_running": 0, "costs_running_pct": "0.00%",
        "costs_product": 0, "costs_product_pct": "0.00%",
        "costs_exit": CHARGE, "costs_exit_pct": pct,
        "yield_reduction_year": CHARGE, "yield_reduction_year_pct": pct,
        "yield_reduction_year_following": 0, "yield_reduction_year_following_pct": "0.00%",
        "yield_reduction_year_exit": CHARGE, "yield_reduction_year_exit_pct": pct,
        "estimated_holding_duration_years": "5",
        "estimated_yield_reduction_total": 2 * CHARGE, "estimated_yield_reduction_total_pct": pct,
        "KIID": "text", "legal_disclaimer": "text",
    }


def order_json(order: SimOrder, price: Decimal, *, created: bool = False) -> dict[str, Any]:
    """The order object: the full shape of ``GET orders``; ``created=True`` gives the ``POST orders``
    shape (no ``isin_title``, ``type``, ``executed_*``)."""
    estimated = order.limit_price if order.limit_price is not None else price
    executed = order.filled_quantity > 0
    body: dict[str, Any] = {
        "id": order.id,
        "isin": order.instrument.isin,
        "isin_title": order.instrument.name,
        "expires_at": fmt_time(order.expires_at),
        "created_at": fmt_time(order.created_at),
        "activated_at": fmt_time(order.activated_at),
        "cancelled_at": fmt_time(order.canceled_at),
        "side": order.side,
        "quantity": int(order.quantity),
        "stop_price": money(order.stop_price),
        "limit_price": money(order.limit_price),
        "estimated_price": money(estimated),
        "estimated_price_total": money(estimated * order.quantity),
        "venue": order.extra.get("venue", "xmun"),
        "status": STATUS_WORDS[order.status],
        "type": order.order_type,
        "executed_quantity": int(order.filled_quantity),
        "executed_price": money(order.average_price) if executed else 0,
        "executed_price_total": money(order.average_price * order.filled_quantity) if executed else 0,
        "executed_at": fmt_time(order.executed_at),
        "rejected_at": fmt_time(order.rejected_at),
        "notes": order.extra.get("notes"),
        "charge": CHARGE,
        "chargeable_at": fmt_time(order.executed_at),
        "key_creation_id": order.extra.get("key_id"),
        "key_activation_id": order.extra.get("key_id") if order.activated_at else None,
        "regulatory_information": regulatory_information(estimated * order.quantity),
        "idempotency": order.client_order_id,
    }
    if order.status is SimStatus.EXPIRED:
        body["expires_at"] = fmt_time(order.expires_at)
    if created:
        for key in ("isin_title", "type", "executed_quantity", "executed_price", "executed_price_total",
                    "executed_at", "activated_at", "cancelled_at", "rejected_at", "key_activation_id"):
            body.pop(key, None)
    return body


def position_json(position: SimPosition, price: Decimal) -> dict[str, Any]:
    return {
        "isin": position.instrument.isin,
        "isin_title": position.instrument.name,
        "quantity": int(position.quantity),
        "buy_price_avg": money(position.average_price),
        "estimated_price_total": money(price * position.quantity),
        "estimated_price": money(price),
    }


#: the trading venue of every sandbox instrument, as lemon's market-data API lists it
_XMUN = {"name": "Börse München - Gettex", "title": "Gettex", "mic": "XMUN", "is_open": True, "tradable": True,
         "currency": "EUR"}


def instrument_json(ins: SimInstrument) -> dict[str, Any]:
    """One item of the market-data ``GET instruments``: ``symbol`` is the ticker on the venue; the
    WKN of a German ISIN is its national part (other ISINs' WKNs are not in the catalogue: ``""``)."""
    return {"isin": ins.isin, "wkn": ins.isin[5:11] if ins.isin.startswith("DE") else "", "name": ins.name,
            "title": ins.name, "symbol": ins.symbol, "type": ins.asset_class, "venues": [dict(_XMUN)]}
