"""``PositionFilter`` / ``OrderFilter`` → ETNA ``filter`` expressions.

What ETNA can test is pushed down; the adapter then applies ``filter.matches`` to what comes back,
so a pushed-down clause only has to keep every item that matches (it may keep more):

==================  ===============================================================
condition           ETNA expression
==================  ===============================================================
symbol              ``Symbol = '<value>'`` (``'`` doubled: the value stays one literal)
min / max quantity  ``Quantity >= n``, ``Quantity <= n``, both: ``Quantity between n and m``
statuses            ``Status in (codes)`` (every wire status that maps to a wanted status)
created_after       ``CreateDate >= #<second floor>#``
created_before      ``CreateDate < #<second floor + 1 s>#`` (ETNA dates have whole seconds)
side, isin          not expressible: local only
==================  ===============================================================

A filter whose statuses no ETNA status maps to matches nothing (:attr:`Pushdown.empty`). A pushdown
is :attr:`~Pushdown.exact` when ETNA's answer is exactly the filtered list (nothing local is left),
so that a Relay window can be read as one ETNA page: no side / isin condition, no
``created_before`` (its clause is widened to the next second), a ``created_after`` on a whole
second. ``Held`` orders (no status code) are never matched by a status filter, pushed or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ...domain.requests import OrderFilter, PositionFilter
from .parsing import ORDER_STATUS_CODES, STATUSES

__all__ = ["Pushdown", "date_literal", "number_literal", "order_filter", "position_filter", "string_literal"]


@dataclass(frozen=True, slots=True)
class Pushdown:
    """The ``filter`` query value (``None``: no condition to push), whether nothing can match, and
    whether ETNA's answer needs no local filtering."""

    expression: str | None = None
    empty: bool = False
    exact: bool = True


def string_literal(value: str) -> str:
    """``value`` as one ETNA string literal: quoted, with every ``'`` doubled."""
    return "'" + value.replace("'", "''") + "'"


def number_literal(value: Decimal) -> str:
    """A finite Decimal in plain notation (no exponent)."""
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    return format(value, "f")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def date_literal(value: datetime) -> str:
    """``#YYYY-MM-DDTHH:MM:SS#`` in UTC (fractions dropped: the caller rounds)."""
    return "#" + _utc(value).strftime("%Y-%m-%dT%H:%M:%S") + "#"


def _floor(value: datetime) -> datetime:
    return _utc(value).replace(microsecond=0)


def _join(clauses: list[str], exact: bool = True) -> Pushdown:
    return Pushdown(" and ".join(clauses) if clauses else None, exact=exact)


def position_filter(f: PositionFilter | None) -> Pushdown:
    """The expression for ``GET …/positions``."""
    if f is None:
        return Pushdown()
    clauses: list[str] = []
    if f.symbol is not None:
        clauses.append(f"Symbol = {string_literal(f.symbol)}")
    if f.min_quantity is not None and f.max_quantity is not None:
        clauses.append(f"Quantity between {number_literal(f.min_quantity)} and {number_literal(f.max_quantity)}")
    elif f.min_quantity is not None:
        clauses.append(f"Quantity >= {number_literal(f.min_quantity)}")
    elif f.max_quantity is not None:
        clauses.append(f"Quantity <= {number_literal(f.max_quantity)}")
    return _join(clauses, exact=f.isin is None)


def order_filter(f: OrderFilter | None) -> Pushdown:
    """The expression for ``GET …/orders``."""
    if f is None:
        return Pushdown()
    clauses: list[str] = []
    if f.statuses:
        wanted = [word for word, status in STATUSES.items() if status in f.statuses]
        codes = sorted(ORDER_STATUS_CODES[w] for w in wanted if w in ORDER_STATUS_CODES)
        if not codes:
            return Pushdown(empty=True)
        clauses.append(f"Status in ({', '.join(str(c) for c in codes)})")
    if f.symbol is not None:
        clauses.append(f"Symbol = {string_literal(f.symbol)}")
    if f.created_after is not None:
        clauses.append(f"CreateDate >= {date_literal(_floor(f.created_after))}")
    if f.created_before is not None:
        try:
            upper = _floor(f.created_before) + timedelta(seconds=1)
        except OverflowError:
            upper = None
        if upper is not None:
            clauses.append(f"CreateDate < {date_literal(upper)}")
    exact = (f.side is None and f.isin is None and f.created_before is None
             and (f.created_after is None or _utc(f.created_after).microsecond == 0))
    return _join(clauses, exact=exact)
