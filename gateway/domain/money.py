"""The scale money leaves the gateway with: one rule per currency, applied once at the boundary.

* **Amounts** (cash, market values, cost bases, profit and loss) are quantised to the currency's
  minor unit (ISO 4217: 2 decimals for EUR, USD, INR; 0 for JPY; 3 for KWD).
* **Prices** (limit, stop, average fill, average entry, market price) are quantised to the tick
  precision of the venues that quote the currency: EUR at 4 decimals (lemon.markets quotes in
  1/10 000 EUR, and Xetra / gettex ticks reach 0.001 for low-priced shares), INR at 2 (NSE / BSE
  ticks are 0.01, 0.05 and 0.10), USD at 2 from 1.00 up and at 4 below (US equities tick in cents
  from one dollar up and in 0.0001 below it: Reg NMS rule 612; ETNA's ``TickSize`` says the same).
  A currency without a rule here keeps two decimals more than its minor unit.

Rounding is half-even (the ``decimal`` default, banker's rounding); everything stays ``Decimal``
and is computed in a context wide enough that no amount raises (no float is ever involved). The
functions return plain ``Decimal`` values with a fixed exponent, so ``70488`` becomes ``70488.00``
and ``1217.296153846153846153846154`` becomes ``1217.30``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

from .models import Money

__all__ = ["MINOR_UNITS", "PRICE_BANDS", "amount_scale", "price_scale", "quantize_amount", "quantize_price",
           "scaled_amount", "scaled_price"]

#: ISO 4217 minor units of the currencies the brokers deal in (others default to 2)
MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNH": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
    "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2,
    "USD": 2, "ZAR": 2,
}

#: price decimals per currency as ``(lower edge, decimals)`` bands, highest edge first: a price
#: whose absolute value is at or above an edge takes that band's decimals
PRICE_BANDS: dict[str, tuple[tuple[Decimal, int], ...]] = {
    "EUR": ((Decimal(0), 4),),
    "INR": ((Decimal(0), 2),),
    "USD": ((Decimal(1), 2), (Decimal(0), 4)),
}

_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)
_EXPONENTS = {n: Decimal(1).scaleb(-n) for n in range(0, 9)}


def amount_scale(currency: str) -> int:
    """Decimals of an amount in ``currency`` (its ISO 4217 minor unit; 2 when unknown)."""
    return MINOR_UNITS.get(currency.upper(), 2)


def price_scale(currency: str, price: Decimal) -> int:
    """Decimals of ``price`` in ``currency``: the band of :data:`PRICE_BANDS` it falls in, else the
    minor unit plus two."""
    bands = PRICE_BANDS.get(currency.upper())
    if bands is None:
        return amount_scale(currency) + 2
    size = abs(price)
    for edge, decimals in bands:
        if size >= edge:
            return decimals
    return bands[-1][1]


def _quantize(value: Decimal, decimals: int) -> Decimal:
    exponent = _EXPONENTS.get(decimals) or Decimal(1).scaleb(-decimals)
    return value.quantize(exponent, context=_CONTEXT)


def scaled_amount(amount: Decimal, currency: str) -> Decimal:
    """``amount`` (in ``currency``) at the currency's minor unit; what :func:`quantize_amount` does
    without building a ``Money`` (the GraphQL layer calls it for every amount it answers)."""
    return _quantize(amount, amount_scale(currency))


def scaled_price(price: Decimal, currency: str) -> Decimal:
    """``price`` (in ``currency``) at the currency's price precision; see :func:`quantize_price`."""
    return _quantize(price, price_scale(currency, price))


def quantize_amount(money: Money) -> Money:
    """``money`` at its currency's minor unit (an amount: cash, value, cost, P&L)."""
    return Money(scaled_amount(money.amount, money.currency), money.currency)


def quantize_price(money: Money) -> Money:
    """``money`` at its currency's price precision (a price per unit)."""
    return Money(scaled_price(money.amount, money.currency), money.currency)
