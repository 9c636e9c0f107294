"""The Alice Blue portfolio endpoints: ``vendor/getUserDetails`` (login), ``holdings/{CNC|MTF}``,
``positions``, ``conversion``, ``limits/``, ``profile/``, and the contract master.

* Holdings are the start-of-day DEMAT holdings (``dpQuantity`` free in the DP account,
  ``t1Quantity`` bought the previous day and not yet settled, ``collateralQuantity`` pledged,
  ``totalQuantity`` their sum); they do not move during the day. ``sellableQty`` does.
* Positions are the day's lines (``dayBuy*`` / ``daySell*``) plus carried-forward ones
  (``overnightQuantity``), keyed by exchange, instrument and product; the product words are the
  order book's (``LONGTERM``, ``INTRADAY``, ``MTF``) as seed 002 shows them (the reference's
  fixtures say ``CNC`` / ``MIS`` / ``DELIVERY``; see :data:`.codes.PRODUCT_WORDS`).
* ``conversion`` moves a day quantity between products at the line's average price; it names the
  position by ``exchange`` + ``tradingSymbol`` and takes either product vocabulary.
* The contract master is not in the wire reference: it is served as Alice Blue's public V2
  contract master is shaped (``GET /restpy/contract_master?exch=NSE`` → ``{"NSE": [{exch,
  exchange_segment, symbol, token, trading_symbol, formatted_ins_name, lot_size, tick_size,
  group_name, pdc}]}``) plus an ``isin`` field (a sandbox addition), without authentication.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine import SimPosition
from .codes import EMPTY, LEGACY_POSITION_WORDS, PRODUCT_WORDS
from .state import AliceState, DayLine
from .validation import Refusal, parse_quantity
from .wire import failure, num, ok, read_json, request_time

__all__ = ["PortfolioRoutes"]

HOLDING_PATHS = {"CNC": "LONGTERM", "MTF": "MTF"}
FROM_POSITION_WORD = {**{v: k for k, v in PRODUCT_WORDS.items()}, **LEGACY_POSITION_WORDS}


def _avg(value: Decimal, qty: int) -> Decimal:
    return value / qty if qty else Decimal(0)


class PortfolioRoutes:
    def __init__(self, state: AliceState) -> None:
        self.state = state
        self.engine = state.engine

    async def login(self, request: Request) -> Response:
        """POST vendor/getUserDetails ``{"checkSum": …}`` → ``{stat, clientId, userSession}``."""
        body = await read_json(request)
        checksum = str(body.get("checkSum") or "") if isinstance(body, dict) else ""
        found = self.state.login(checksum) if checksum else None
        if found is None:
            return JSONResponse({"stat": "Not_ok", "emsg": "Invalid auth code"})
        client_id, session = found
        return JSONResponse({"stat": "Ok", "clientId": client_id, "userSession": session})

    def _holding_rows(self, client_id: str, product: str) -> list[tuple[SimPosition, dict[str, Any]]]:
        account = self.engine.accounts[client_id]
        return [(p, p.extra["holding"]) for (_, prod), p in account.positions.items()
                if prod == product and "holding" in p.extra]

    async def holdings(self, request: Request, client_id: str) -> Response:
        """GET holdings/{CNC|MTF}: one item per ISIN; EC922 when there are none."""
        product = HOLDING_PATHS.get(request.path_params["product"].upper())
        rows = self._holding_rows(client_id, product) if product else []
        if not rows:
            return failure(EMPTY["holdings"])
        out = []
        for pos, h in rows:
            ins = pos.instrument
            dp, t1, coll = int(h.get("dp", 0)), int(h.get("t1", 0)), int(h.get("collateral", 0))
            sold = sum(line.sell_qty for (acc, _, key, prod), line in self.state.day.lines.items()
                       if acc == client_id and key == ins.key and prod == product)
            avg = Decimal(str(h.get("average_price", pos.average_price)))
            out.append({
                "isin": ins.isin,
                "nseInstrumentId": ins.ids.get("nse", ""),
                "bseInstrumentId": ins.ids.get("bse", ""),
                "nseTradingSymbol": f"{ins.symbol}-EQ" if "nse" in ins.ids else "",
                "bseTradingSymbol": ins.symbol if "bse" in ins.ids else "",
                "previousDayClose": num(Decimal(str(h.get("pdc", ins.price)))),
                "product": PRODUCT_WORDS[product],  # LONGTERM per seed 002 (the reference's fixture: DELIVERY)
                "formattedInstrumentName": ins.symbol,
                "averageTradedPrice": num(avg, 2),
                "collateralQuantity": coll,
                "authorizedQuantity": int(h.get("authorized", 0)),
                "dpQuantity": dp,
                "totalQuantity": dp + t1 + coll,
                "t1Quantity": t1,
                "ltp": num(self.engine.price(ins.key)),
                "sellableQty": max(dp + t1 - sold, 0),
                "investedPrice": num(avg, 2),
            })
        return ok(out)

    async def positions(self, request: Request, client_id: str) -> Response:
        """GET positions: day and carried-forward lines; EC920 when there are none."""
        lines: dict[tuple[str, str, str], tuple[DayLine, dict[str, Any]]] = {}
        for (acc, exchange, key, product), line in self.state.day.lines.items():
            if acc == client_id and (line.buy_qty or line.sell_qty):
                lines[(exchange, key, product)] = (line, {})
        for (key, product), pos in self.engine.accounts[client_id].positions.items():
            over = pos.extra.get("overnight")
            if over:
                k = (over["exchange"], key, product)
                lines[k] = (lines[k][0] if k in lines else DayLine(), over)
        if not lines:
            return failure(EMPTY["positions"])
        out = []
        for (exchange, key, product), (line, over) in lines.items():
            ins = self.engine.instruments[key]
            listing = self.state.listing(exchange, ins.ids["nse" if exchange == "NSE" else "bse"])
            assert listing is not None
            o_qty, o_px = int(over.get("quantity", 0)), Decimal(str(over.get("price", 0)))
            buy_qty, buy_value = o_qty + line.buy_qty, o_px * o_qty + line.buy_value
            net = o_qty + line.net
            buy_avg, sell_avg = _avg(buy_value, buy_qty), _avg(line.sell_value, line.sell_qty)
            matched = min(buy_qty, line.sell_qty)
            out.append({
                "instrumentId": listing.instrument_id,
                "tradingSymbol": listing.trading_symbol,
                "formattedInstrumentName": listing.trading_symbol,
                "exchange": exchange,
                "product": PRODUCT_WORDS[product],
                "netQuantity": net,
                "netAveragePrice": num(buy_avg if net > 0 else sell_avg if net < 0 else Decimal(0), 2),
                "overnightQuantity": o_qty,
                "overnightPrice": num(o_px, 2),
                "buyQuantity": buy_qty,
                "sellQuantity": line.sell_qty,
                "daySellQuantity": line.sell_qty,
                "dayBuyQuantity": line.buy_qty,
                "dayBuyPrice": num(_avg(line.buy_value, line.buy_qty), 2),
                "daySellPrice": num(sell_avg, 2),
                "multiplier": 1,
                "lotsize": listing.lot_size,
                "ticksize": num(listing.tick_size),
                "previousDayClose": None,
                "realizedPnl": num((sell_avg - buy_avg) * matched, 2) if matched else 0,
                "buyPrice": num(buy_avg, 2),
                "sellPrice": num(sell_avg, 2),
                "dayBuyValue": num(line.buy_value, 2),
                "daySellValue": num(line.sell_value, 2),
                "validity": "" if o_qty else "DAY",
            })
        return ok(out)

    async def conversion(self, request: Request, client_id: str) -> Response:
        """POST conversion: move a day quantity from ``prevProduct`` to ``product``."""
        body = await read_json(request)
        if not isinstance(body, dict):
            return failure("EC914")
        exchange = str(body.get("exchange") or "").upper()
        listing = self.state.listing_by_symbol(exchange, str(body.get("tradingSymbol") or ""))
        if listing is None:
            return failure("EC868")
        prev = FROM_POSITION_WORD.get(str(body.get("prevProduct") or "").upper())
        new = FROM_POSITION_WORD.get(str(body.get("product") or "").upper())
        if prev is None or new is None or prev == new:
            return failure("EC852")
        side = str(body.get("transactionType") or "").upper()
        if side not in ("BUY", "SELL"):
            return failure("EC929")
        try:
            qty = parse_quantity(body.get("quantity"))
        except Refusal as refusal:
            return failure(refusal.code)
        ins = listing.instrument
        src = self.state.day.lines.get((client_id, exchange, ins.key, prev))
        if src is None or not (src.buy_qty or src.sell_qty):
            return failure("EC868")
        if side == "BUY" and src.net < qty:
            return failure("EC869")
        if side == "SELL" and -src.net < qty:
            return failure("EC870")
        dst = self.state.day.line(client_id, exchange, ins.key, new)
        if side == "BUY":
            price = _avg(src.buy_value, src.buy_qty)
            src.buy_qty, src.buy_value = src.buy_qty - qty, src.buy_value - price * qty
        else:
            price = _avg(src.sell_value, src.sell_qty)
            src.sell_qty, src.sell_value = src.sell_qty - qty, src.sell_value - price * qty
        dst.add(side.lower(), qty, price)
        self._move(client_id, prev, new, ins.key, Decimal(qty if side == "BUY" else -qty), price)
        return ok([{"brokerOrderId": self.state.new_order_id(), "requestTime": request_time()}])

    def _move(self, client_id: str, prev: str, new: str, key: str, signed: Decimal, price: Decimal) -> None:
        account = self.engine.accounts[client_id]
        ins = self.engine.instruments[key]
        src, dst = account.position(ins, prev), account.position(ins, new)
        src.quantity -= signed
        if src.quantity == 0:
            src.average_price = Decimal(0)
        total = dst.quantity + signed
        if dst.quantity == 0 or (dst.quantity > 0) == (signed > 0):
            dst.average_price = (dst.average_price * abs(dst.quantity) + price * abs(signed)) / abs(total)
        dst.quantity = total

    async def limits(self, request: Request, client_id: str) -> Response:
        """GET limits/ (trailing slash): one item of RMS figures in rupees."""
        cash = self.engine.accounts[client_id].cash
        opening = self.state.opening_cash[client_id]
        return ok([{
            "tradingLimit": num(cash, 2), "openingCashLimit": num(opening, 2), "intradayPayin": 0,
            "collateralMargin": 0, "creditForSell": 0, "adhocMargin": 0,
            "utilizedMargin": num(max(opening - cash, Decimal(0)), 2), "blockedForPayout": 0,
            "utilizedSpanMargin": 0, "utilizedExposureMargin": 0,
        }])

    async def profile(self, request: Request, client_id: str) -> Response:
        """GET profile/ (trailing slash): one item."""
        user = self.state.users[client_id]
        return ok([{
            "clientId": client_id, "clientName": user.name, "isTotpEnabled": "Y", "isPoaProvided": "N",
            "accountStatus": "Activated", "exchanges": ["BSE", "BFO", "BCD", "CDS", "MCX", "NSE", "NFO", "NCOM"],
            "products": ["LONGTERM", "INTRADAY", "MTF", "CO", "BO"], "orderComplexity": ["REGULAR", "AMO", "BO", "CO"],
        }])

    async def contract_master(self, request: Request) -> Response:
        """GET /restpy/contract_master?exch=NSE (no auth): ``{"NSE": [rows]}``."""
        exch = request.query_params.get("exch", "NSE").upper()
        rows = [{
            "exch": li.exchange, "exchange_segment": f"{li.exchange.lower()}_cm", "symbol": li.instrument.symbol,
            "token": li.instrument_id, "trading_symbol": li.trading_symbol,
            "formatted_ins_name": li.instrument.name, "lot_size": str(li.lot_size),
            "tick_size": f"{li.tick_size:.2f}", "group_name": "EQ" if li.exchange == "NSE" else "A",
            "pdc": str(li.instrument.price), "instrument_type": "", "isin": li.instrument.isin,
        } for li in self.state.listings.values() if li.exchange == exch]
        return Response(json.dumps({exch: rows}), media_type="application/json")
