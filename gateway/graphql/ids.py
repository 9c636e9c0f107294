"""Opaque global ids: ``base64url(json([type, connection, *native ids]))``.

Decoding checks the type and that the caller may use the connection: an id of another type is an
``InvalidInput``; an id of a connection the caller may not use decodes to ``None`` exactly like an id
that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import TypeVar

from ..auth import Principal
from ..domain.errors import InvalidInput, OrderNotFound
from ..domain.keys import AccountKey, AllocationGroupKey, ConfirmationKey, ConnectionKey, OrderKey, PositionKey

__all__ = ["decode", "decode_any", "encode", "require"]

K = TypeVar("K")

TYPES: dict[str, type] = {
    "BrokerConnection": ConnectionKey,
    "Account": AccountKey,
    "AllocationGroup": AllocationGroupKey,
    "Order": OrderKey,
    "Position": PositionKey,
    "Confirmation": ConfirmationKey,
}
NAMES = {cls: name for name, cls in TYPES.items()}
_JSON = json.JSONEncoder(separators=(",", ":"))  # what json.dumps(..., separators=...) builds on every call


def encode(key: object) -> str:
    """The global id of a key (one of ``gateway.domain.keys``)."""
    name = NAMES[type(key)]
    parts = [name, *(getattr(key, f) for f in key.__slots__)]  # type: ignore[attr-defined]
    raw = _JSON.encode(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_any(value: str, principal: Principal, field: str = "id") -> object | None:
    """Decode an id of any type; ``InvalidInput`` when malformed, ``None`` when not the caller's."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("not a valid id", field=field) from None
    if not isinstance(parts, list) or len(parts) < 2 or parts[0] not in TYPES \
            or not all(isinstance(p, str) for p in parts):
        raise InvalidInput("not a valid id", field=field)
    cls = TYPES[parts[0]]
    if len(parts) - 1 != len(cls.__slots__):
        raise InvalidInput("not a valid id", field=field)
    key = cls(*parts[1:])
    if not principal.can_use(key.connection):
        return None
    return key


def decode(value: str, expected: type[K], principal: Principal, field: str = "id") -> K | None:
    """Decode an id that must be of type ``expected``; see :func:`decode_any`."""
    key = decode_any(value, principal, field)
    if key is not None and not isinstance(key, expected):
        raise InvalidInput(f"expected an id of type {NAMES[expected]}, got one of type {NAMES[type(key)]}", field=field)
    if key is None:
        # a foreign connection: still refuse a wrong type, so the answer does not depend on access
        parts_type = _type_name(value)
        if parts_type is not None and parts_type != NAMES[expected]:
            raise InvalidInput(f"expected an id of type {NAMES[expected]}, got one of type {parts_type}", field=field)
    return key


def require(value: str, expected: type[K], principal: Principal, connections: Collection[str],
            field: str = "id") -> K:
    """Decode an id a mutation or subscription acts on: ``InvalidInput`` when malformed or of another
    type, ``OrderNotFound`` ("no such …") when it names nothing the caller may use."""
    key = decode(value, expected, principal, field)
    if key is None or key.connection not in connections:  # type: ignore[attr-defined]
        raise OrderNotFound(f"no such {_WORDS.get(expected, NAMES[expected].lower())}")
    return key


_WORDS = {AccountKey: "account", AllocationGroupKey: "allocation group", OrderKey: "order",
          PositionKey: "position", ConfirmationKey: "confirmation"}


def _type_name(value: str) -> str | None:
    try:
        parts = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return str(parts[0])
    except Exception:
        return None
