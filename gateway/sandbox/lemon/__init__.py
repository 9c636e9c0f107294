"""The lemon.markets paper venue (Trading API v1) and its seed data.

Two API keys are seeded:

* ``sandbox-lemon-key`` opens the paper account of the default demo user: 100 000 EUR cash,
  positions in Lufthansa, Coinbase, Apple and iShares Core MSCI World, and an open limit buy of
  Tesla far below the market.
* ``sandbox-lemon-large-key`` opens a second account holding 200 positions (the 10 real EUR listings
  plus 190 synthetic instruments named ``SANDBOX SYNTHETIC …`` with well-formed ISINs), for tests of
  how upstream calls scale.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from ...domain.isin import with_check_digit
from ..control import ControlPlane
from ..engine import Engine, EngineConfig, SimAccount, SimOrder, SimStatus
from ..instruments import CATALOGUE, SimInstrument
from ..venue import Venue
from . import wire
from .app import LemonSettings, LemonUser, LemonVenue, build_app

__all__ = ["API_KEY", "LARGE_API_KEY", "create_venue"]

API_KEY = "sandbox-lemon-key"
LARGE_API_KEY = "sandbox-lemon-large-key"

_PROFILE = {
    "created_at": "2021-10-12T10:29:49.769+00:00",
    "firstname": "Erika", "lastname": "Mustermann", "email": "erika.mustermann@example.com",
    "phone": "+491630000000", "address": "Ritterstraße 2A 10969 Berlin",
    "billing_address": "Ritterstraße 2A 10969 Berlin", "billing_email": "erika.mustermann@example.com",
    "billing_name": "Erika Mustermann", "billing_vat": None, "deposit_id": "K2057263187",
    "client_id": "2057263", "account_number": "2057263187", "iban_brokerage": "DE12345678902057263",
    "iban_origin": "DE123456789012345", "bank_name_origin": "Test Bank",
    "approved_at": "2021-11-19T07:40:12.563+00:00", "trading_plan": "go", "data_plan": "go",
    "tax_allowance": 8010000,
}


def _synthetic(n: int) -> SimInstrument:
    isin = with_check_digit(f"DE000SB{n:04d}")
    return SimInstrument(f"SYN{n:04d}", f"SB{n:04d}", isin, f"SANDBOX SYNTHETIC {n:04d}", "EUR", "XMUN",
                         "stock", Decimal(10 + n % 90) + Decimal("0.25"))


def create_venue(config: EngineConfig | None = None, settings: LemonSettings | None = None) -> Venue:
    """A fresh lemon paper venue (see the module docstring for its seed)."""
    eur = tuple(i for i in CATALOGUE if i.currency == "EUR")
    synthetic = tuple(_synthetic(n) for n in range(1, 191))
    engine = Engine(eur + synthetic, config)
    main = engine.add_account(SimAccount("acc_pyNQNll99hQbXMCS0dRzHyKQCRKYHpy3zg", "EUR", Decimal(100000),
                                         "Erika Mustermann"))
    engine.seed_position(main.id, "LHA", 100, "6.6100")
    engine.seed_position(main.id, "COIN.DE", 2, "296.5000")
    engine.seed_position(main.id, "AAPL.DE", 10, "171.2400")
    engine.seed_position(main.id, "EUNL", 25, "88.9000")
    tsla = engine.instruments["TSLA.DE"]
    resting = SimOrder(
        id="ord_pyPHRggnnk1kimMIx3ogN03In0QnhUZr0L", account_id=main.id, instrument=tsla, side="buy",
        quantity=Decimal(2), limit_price=Decimal("150.0000"), time_in_force="gtd",
        expires_at=datetime.combine(datetime.now(UTC).date() + timedelta(days=14), time(22, 59), UTC),
        extra={"venue": "xmun", "notes": None, "key_id": "apk_pyJKKbbDDNympXsVwZzPp2nBVlTMTLRmxy"},
    )
    resting.status = SimStatus.WORKING
    resting.activated_at = resting.created_at
    engine.add_order(resting)
    resting.working_since = 0.0

    large = engine.add_account(SimAccount("acc_pyLRGll42hQbXMCS0dRzHyKQCRKYHpy7zq", "EUR", Decimal(250000),
                                          "Max Mustermann"))
    for ins in eur + synthetic:
        engine.seed_position(large.id, ins.key, 1 + int(ins.price) % 7, ins.price)

    users = [
        LemonUser(API_KEY, main.id, "apk_pyJKKbbDDNympXsVwZzPp2nBVlTMTLRmxy", dict(_PROFILE)),
        LemonUser(LARGE_API_KEY, large.id, "apk_pyLRGbbDDNympXsVwZzPp2nBVlTMTLRmxy",
                  {**_PROFILE, "firstname": "Max", "email": "max.mustermann@example.com",
                   "billing_name": "Max Mustermann", "account_number": "2057263999"}),
    ]
    venue = LemonVenue(engine, users, settings or LemonSettings())
    control = ControlPlane(engine, lambda status: wire.error(_code_for(status), status=status))
    app = build_app(venue, control)
    return Venue("lemon", control.middleware(app), engine, control, "/v1/",
                 credentials={"api_key": API_KEY}, options={})


def _code_for(status: int) -> str:
    return {401: "unauthorized", 404: "order_not_found", 429: "rate_limit_exceeded",
            503: "trading_blocked"}.get(status, "internal_error")
