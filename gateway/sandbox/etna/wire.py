"""ETNA wire vocabulary shared by the venue's handlers: times, numbers, enums, error bodies.

* Times are .NET ``DateTime`` values serialised the Json.NET way: UTC, ``Z`` suffix, up to seven
  fractional digits with trailing zeros trimmed (``2019-02-25T13:33:40.9022856Z``,
  ``2019-01-22T13:00:26.575811Z``, ``2019-02-25T21:00:00Z``); ``0001-01-01T00:00:00Z`` means unset.
  The venue keeps times as ticks (100 ns since 0001-01-01) so that filters compare what it prints.
* Numbers are plain JSON numbers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.responses import Response

__all__ = [
    "DOTNET_EPOCH", "NOT_SET", "ORDER_STATUS_CODES", "SECURITY_TYPES", "EtnaError", "dotnet_ticks",
    "error_body", "format_ticks", "json_response", "num", "parse_wire_datetime", "ticks_of",
]

DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
NOT_SET = "0001-01-01T00:00:00Z"

#: OrderResource ``Status`` → the numeric code used in ``Status in (…)`` filters.
ORDER_STATUS_CODES: dict[str, int] = {
    "New": 0, "PartiallyFilled": 1, "Filled": 2, "DoneForDay": 3, "Canceled": 4, "Replaced": 5,
    "PendingCancel": 6, "Stopped": 7, "Rejected": 8, "Suspended": 9, "PendingNew": 10, "Calculated": 11,
    "Expired": 12, "AcceptedForBidding": 13, "PendingReplace": 14, "Error": 15,
}

#: The 41 ``SecurityType`` values, in their numeric order (BankersAcceptance = 0 … Unit = 40).
SECURITY_TYPES: tuple[str, ...] = (
    "BankersAcceptance", "CertificateOfDeposit", "CollateralizeMortgageObligation", "CorporateBond",
    "CommercialPaper", "CorporatePrivatePlacement", "CommonStock", "FederalHousingAuthority", "FederalHomeLoan",
    "FederalNationalMortgageAssociation", "ForeignExchangeContract", "Future",
    "GovernmentNationalMortgageAssociation", "TreasuriesPlusAgencyDebenture", "MutualFund", "MortgageInterestOnly",
    "MortgagePrincipleOnly", "MortgagePrivatePlacement", "MiscellaneousPassThru", "MunicipalBond",
    "NoIsitcSecurityType", "Option", "PreferredStock", "RepurchaseAgreement", "ReverseRepurchaseAgreement",
    "StudentLoanMarketingAssociation", "TimeDeposit", "UsTreasuryBill", "Warrant", "CatsTigersLions",
    "WildcardEntry", "ConvertibleBond", "MortgageIoette", "Index", "FakeStockForNonStandartOption", "Right",
    "Cryptocurrency", "ETF", "DepositoryReceipt", "CoveredWarrant", "Unit",
)

#: catalogue asset class → SecurityType
ASSET_CLASS_TYPES = {"stock": "CommonStock", "etf": "ETF", "fund": "MutualFund", "option": "Option",
                     "future": "Future", "bond": "CorporateBond", "warrant": "Warrant", "crypto": "Cryptocurrency"}


def dotnet_ticks(dt: datetime) -> int:
    """``dt`` as .NET ticks (100 ns units since 0001-01-01 UTC)."""
    delta = dt.astimezone(UTC) - DOTNET_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def ticks_of(dt: datetime | None, salt: int = 0) -> int:
    """The venue's tick value of a time: microseconds from ``dt`` plus a seventh digit ``salt`` (0–9),
    so that printed times show the 7 digits the real API shows. ``None`` is tick 0 (unset)."""
    if dt is None:
        return 0
    return dotnet_ticks(dt) + salt % 10


def format_ticks(ticks: int) -> str:
    """Ticks as Json.NET prints a UTC DateTime: trailing fractional zeros trimmed."""
    if ticks <= 0:
        return NOT_SET
    seconds, frac = divmod(ticks, 10_000_000)
    dt = DOTNET_EPOCH + timedelta(seconds=seconds)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:07d}".rstrip("0")
    return text + "Z"


def parse_wire_datetime(text: str) -> int:
    """A request timestamp (``2019-02-25T21:00:00Z``, 0–7 fractional digits, ``Z`` or offset, or a
    bare date) as ticks; raises ``ValueError``."""
    text = text.strip()
    frac_ticks = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits):]
        if not digits or len(digits) > 7:
            raise ValueError(f"bad fraction in {text!r}")
        frac_ticks = int(digits.ljust(7, "0"))
        text = head + tail
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dotnet_ticks(dt) + frac_ticks


def num(value: Decimal | int | None) -> int | float:
    """A Decimal as a plain JSON number (an int when integral)."""
    if value is None:
        return 0
    d = Decimal(value)
    if d == d.to_integral_value():
        return int(d)
    return float(d)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json; charset=utf-8")


_DENIED = {"Message": "Authorization has been denied for this request."}
_SERVER = {"message": "An error occurred while processing your request", "error": "Unexpected server error"}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The body ETNA's layers answer ``status`` with (see the wire reference, §9)."""
    if status == 403:
        return {"error": "Application key is not defined or does not exist"}
    if status == 401:
        return dict(_DENIED)
    if status >= 500:
        return dict(_SERVER)
    if status == 422:
        return {"Message": "Validation error occured while processing entity", "ModelState": {}}
    if status == 400:
        return {"Message": message or "The request is invalid."}
    if status == 429:
        return {"Message": message or "API calls quota exceeded! maximum admitted 10 per Second."}
    return {"Message": message or "The request could not be processed."}


class EtnaError(Exception):
    """Raised by handlers; rendered as ``status`` with ``body`` (ETNA's own shape)."""

    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body if body is not None else error_body(status)

    def response(self) -> Response:
        return json_response(self.body, self.status)
