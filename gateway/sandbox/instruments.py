"""The sandbox's instrument catalogue: real instruments with their real identifiers.

Prices are plausible reference prices in the instrument's currency (not live). ``ids`` holds the
identifiers each broker uses: ``conid`` (IBKR), ``etna`` (ETNA SecurityId), ``nse`` / ``bse``
(Alice Blue instrumentId / exchange token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["CATALOGUE", "SimInstrument", "by_isin", "by_symbol"]


@dataclass(frozen=True, slots=True)
class SimInstrument:
    key: str
    symbol: str
    isin: str
    name: str
    currency: str
    exchange: str
    asset_class: str
    price: Decimal
    tick_size: Decimal = Decimal("0.01")
    lot_size: int = 1
    ids: dict[str, str] = field(default_factory=dict)


def _i(key: str, symbol: str, isin: str, name: str, currency: str, exchange: str, asset_class: str,
       price: str, tick: str = "0.01", **ids: str) -> SimInstrument:
    return SimInstrument(key, symbol, isin, name, currency, exchange, asset_class, Decimal(price), Decimal(tick), 1, ids)


CATALOGUE: tuple[SimInstrument, ...] = (
    # Xetra / Munich listings traded through lemon (EUR)
    _i("LHA", "LHA", "DE0008232125", "DEUTSCHE LUFTHANSA AG", "EUR", "XMUN", "stock", "6.6420"),
    _i("COIN.DE", "1QZ", "US19260Q1076", "COINBASE GLOBAL INC.", "EUR", "XMUN", "stock", "215.4000"),
    _i("TSLA.DE", "TL0", "US88160R1014", "TESLA INC.", "EUR", "XMUN", "stock", "243.5500"),
    _i("AAPL.DE", "APC", "US0378331005", "APPLE INC.", "EUR", "XMUN", "stock", "196.2000"),
    _i("EUNL", "EUNL", "IE00B4L5Y983", "ISHARES CORE MSCI WORLD UCITS ETF USD (ACC)", "EUR", "XMUN", "etf", "101.7300"),
    _i("SAP", "SAP", "DE0007164600", "SAP SE", "EUR", "XMUN", "stock", "231.8500"),
    _i("SIE", "SIE", "DE0007236101", "SIEMENS AG", "EUR", "XMUN", "stock", "198.1400"),
    _i("ALV", "ALV", "DE0008404005", "ALLIANZ SE", "EUR", "XMUN", "stock", "318.9000"),
    _i("BAS", "BAS", "DE000BASF111", "BASF SE", "EUR", "XMUN", "stock", "44.5200"),
    _i("VWCE", "VWCE", "IE00BK5BQT80", "VANGUARD FTSE ALL-WORLD UCITS ETF (ACC)", "EUR", "XMUN", "etf", "134.6800"),
    # US listings (USD): IBKR conids, ETNA security ids
    _i("AAPL", "AAPL", "US0378331005", "APPLE INC", "USD", "XNAS", "stock", "228.5200", conid="265598", etna="1001"),
    _i("SPY", "SPY", "US78462F1030", "SPDR S&P 500 ETF TRUST", "USD", "ARCX", "etf", "597.1900", conid="756733", etna="1002"),
    _i("TSLA", "TSLA", "US88160R1014", "TESLA INC", "USD", "XNAS", "stock", "352.5600", conid="76792991", etna="1003"),
    _i("META", "META", "US30303M1027", "META PLATFORMS INC-CLASS A", "USD", "XNAS", "stock", "563.0900", conid="107113386", etna="1004"),
    _i("MSFT", "MSFT", "US5949181045", "MICROSOFT CORP", "USD", "XNAS", "stock", "417.0000", conid="272093", etna="1005"),
    _i("AMZN", "AMZN", "US0231351067", "AMAZON.COM INC", "USD", "XNAS", "stock", "201.7000", conid="3691937", etna="1006"),
    _i("NVDA", "NVDA", "US67066G1040", "NVIDIA CORP", "USD", "XNAS", "stock", "141.9500", conid="4815747", etna="1007"),
    _i("IBM", "IBM", "US4592001014", "INTL BUSINESS MACHINES CORP", "USD", "XNYS", "stock", "222.9700", conid="8314", etna="1008"),
    _i("QQQ", "QQQ", "US46090E1038", "INVESCO QQQ TRUST SERIES 1", "USD", "XNAS", "etf", "505.7900", conid="320227571", etna="1009"),
    _i("GOOGL", "GOOGL", "US02079K3059", "ALPHABET INC-CL A", "USD", "XNAS", "stock", "167.6300", conid="208813719", etna="1010"),
    # NSE / BSE listings (INR): tick 0.10 above ₹1000 (as the Alice Blue reference gives for ACC), 0.05 or 0.01 below
    _i("ETERNAL", "ETERNAL", "INE758T01015", "ETERNAL LIMITED", "INR", "NSE", "stock", "279.45", "0.05", nse="5097", bse="543320"),
    _i("IDEA", "IDEA", "INE669E01016", "VODAFONE IDEA LIMITED", "INR", "NSE", "stock", "7.85", "0.01", nse="14366", bse="532822"),
    _i("ACC", "ACC", "INE012A01025", "ACC LIMITED", "INR", "NSE", "stock", "2108.60", "0.10", nse="22", bse="500410"),
    _i("RELIANCE", "RELIANCE", "INE002A01018", "RELIANCE INDUSTRIES LTD", "INR", "NSE", "stock", "1290.30", "0.10", nse="2885", bse="500325"),
    _i("INFY", "INFY", "INE009A01021", "INFOSYS LIMITED", "INR", "NSE", "stock", "1873.40", "0.10", nse="1594", bse="500209"),
    _i("TCS", "TCS", "INE467B01029", "TATA CONSULTANCY SERV LT", "INR", "NSE", "stock", "4132.10", "0.10", nse="11536", bse="532540"),
    _i("SBIN", "SBIN", "INE062A01020", "STATE BANK OF INDIA", "INR", "NSE", "stock", "812.35", "0.05", nse="3045", bse="500112"),
)


def by_isin(isin: str, currency: str | None = None) -> SimInstrument | None:
    for ins in CATALOGUE:
        if ins.isin == isin and (currency is None or ins.currency == currency):
            return ins
    return None


def by_symbol(symbol: str, currency: str | None = None) -> SimInstrument | None:
    for ins in CATALOGUE:
        if ins.symbol.upper() == symbol.upper() and (currency is None or ins.currency == currency):
            return ins
    return None
