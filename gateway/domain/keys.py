"""Keys: the configured connection name plus the broker's native ids.

GraphQL ids are opaque encodings of these keys (``gateway.graphql.ids``); every key starts with
the connection, so an id can be checked against the caller's connections before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AccountKey", "AllocationGroupKey", "ConfirmationKey", "ConnectionKey", "OrderKey", "PositionKey"]


@dataclass(frozen=True, slots=True)
class ConnectionKey:
    connection: str


@dataclass(frozen=True, slots=True)
class AccountKey:
    connection: str
    account_number: str


@dataclass(frozen=True, slots=True)
class AllocationGroupKey:
    connection: str
    name: str


@dataclass(frozen=True, slots=True)
class OrderKey:
    """An order: ``account_number`` is the account it was read under (the group name's owner for
    an allocation-group order is the master account)."""

    connection: str
    account_number: str
    broker_order_id: str


@dataclass(frozen=True, slots=True)
class PositionKey:
    """A position: ``instrument_id`` is the broker's instrument id (lemon ISIN, IBKR conid, ...);
    ``product`` separates Alice Blue's intraday and long-term lines of one instrument."""

    connection: str
    account_number: str
    instrument_id: str
    product: str = ""


@dataclass(frozen=True, slots=True)
class ConfirmationKey:
    """A pending confirmation (IBKR reply question, lemon activation needing a PIN)."""

    connection: str
    token: str
