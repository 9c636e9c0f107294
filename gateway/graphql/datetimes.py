"""The ``DateTime`` scalar: ISO 8601 with a UTC offset, always.

A time without an offset (``2024-01-01T00:00:00``) is ambiguous (whose midnight?) and cannot be
compared with the brokers' times; it is refused as ``BAD_USER_INPUT`` before execution, as any
unparsable value. Output is ISO 8601 with its offset.
"""

from __future__ import annotations

from datetime import datetime

import dateutil.parser
import strawberry

__all__ = ["DATETIME_SCALAR"]


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string with a UTC offset")
    try:
        parsed = dateutil.parser.isoparse(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value[:40]!r} has no UTC offset: add one, e.g. 'Z' or '+01:00'")
    return parsed


DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO 8601) and a UTC offset, e.g. \"2024-05-01T09:30:00Z\"; input without an offset "
                "is refused.",
    serialize=datetime.isoformat,
    parse_value=_parse,
)
