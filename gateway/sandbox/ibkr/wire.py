"""Engine objects → IBKR Client Portal JSON, with IBKR's type drift kept (ibkr.md §5, §6, §9, §16):
``orderId`` an integer in live orders and status, ``order_id`` a string in place / reply answers;
``price`` / ``avgPrice`` strings (``""`` for MKT); ``sizeAndFills`` ``"f/t"`` while working, ``"t"``
when done; ``lastExecutionTime`` ``YYMMDDhhmmss``; ``order_ref`` the ``cOID``; display-case
``orderType`` and upper-case ``origOrderType``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..engine import Engine, SimAccount, SimOrder, SimPosition, SimStatus

__all__ = ["ib_status", "live_order", "order_status", "position_item"]

_TYPE_DISPLAY = {"market": ("Market", "MARKET"), "limit": ("Limit", "LIMIT"), "stop": ("Stop", "STOP"),
                 "stop_limit": ("Stop Limit", "STOP_LIMIT")}
_EXCHANGE = {"XNAS": "NASDAQ.NMS", "XNYS": "NYSE", "ARCX": "ARCA"}
_COLORS = {"PendingSubmit": ("#FFFFFF", "#3399CC"), "PreSubmitted": ("#FFFFFF", "#0000CC"),
           "Submitted": ("#000000", "#00F000"), "Filled": ("#FFFFFF", "#000000"),
           "PendingCancel": ("#FFFFFF", "#FF0000"), "Cancelled": ("#FFFFFF", "#AA0000"),
           "Inactive": ("#FFFFFF", "#888888")}


def ib_status(order: SimOrder, now: float, presubmit_for: float) -> str:
    """IBKR's status word: PendingSubmit → PreSubmitted → Submitted → Filled; PendingCancel →
    Cancelled; partial fills keep the working word; rejected / expired end ``Cancelled``."""
    s = order.status
    if s is SimStatus.INACTIVE:
        return "Inactive"
    if s is SimStatus.PENDING_NEW:
        return "PendingSubmit"
    if s is SimStatus.WORKING:
        since = order.working_since if order.working_since is not None else now
        return "PreSubmitted" if now - since < presubmit_for else "Submitted"
    if s is SimStatus.PARTIALLY_FILLED:
        return "Submitted"
    if s is SimStatus.FILLED:
        return "Filled"
    if s is SimStatus.CANCEL_PENDING:
        return "PendingCancel"
    return "Cancelled"  # CANCELED, EXPIRED, REJECTED


def _num(value: Decimal) -> float | int:
    """A JSON number the way IBKR writes quantities (``5.0``)."""
    return float(value)


def _price_str(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _stamp(order: SimOrder) -> datetime:
    return order.executed_at or (order.fills[-1].at if order.fills else None) or order.updated_at


def live_order(order: SimOrder, status: str, account_field: str) -> dict[str, Any]:
    """One item of ``GET iserver/account/orders`` (CAMPUS #live-orders shape).

    ``acct`` is the account the order was read under (the master for an allocation-group order),
    ``account`` the order's own account or group name (as in the SPEC example, they may differ).
    """
    ins = order.instrument
    display, orig = _TYPE_DISPLAY[order.order_type]
    done = status in ("Filled", "Cancelled")
    size_and_fills = _qty(order.filled_quantity if done and status == "Filled" else order.quantity) if done \
        else f"{_qty(order.filled_quantity)}/{_qty(order.quantity)}"
    verb = ("Bought" if order.side == "buy" else "Sold") if status == "Filled" else order.side.capitalize()
    px = order.stop_price if order.order_type == "stop" else order.limit_price
    desc = f"{verb} {_qty(order.quantity)} {display}{' ' + _price_str(px) if px is not None else ''}, " \
           f"{order.time_in_force.upper()}"
    stamp = _stamp(order)
    bg, fg = _COLORS.get(status, ("#FFFFFF", "#000000"))
    item: dict[str, Any] = {
        "acct": account_field, "conidex": ins.ids["conid"], "conid": int(ins.ids["conid"]),
        "account": order.account_id, "orderId": int(order.id), "cashCcy": ins.currency,
        "sizeAndFills": size_and_fills, "orderDesc": desc, "description1": ins.symbol, "ticker": ins.symbol,
        "secType": "STK", "listingExchange": _EXCHANGE.get(ins.exchange, ins.exchange),
        "remainingQuantity": _num(Decimal(0) if done else order.remaining),
        "filledQuantity": _num(order.filled_quantity), "totalSize": _num(order.quantity),
        "companyName": ins.name, "status": status, "order_ccp_status": status,
        "origOrderType": orig, "supportsTaxOpt": "1",
        "lastExecutionTime": stamp.astimezone(UTC).strftime("%y%m%d%H%M%S"),
        "orderType": display, "bgColor": bg, "fgColor": fg, "isEventTrading": "0",
        "price": _price_str(px), "timeInForce": "CLOSE" if status == "Filled" and order.time_in_force == "day"
        else order.time_in_force.upper(),
        "lastExecutionTime_r": int(stamp.timestamp() * 1000), "side": order.side.upper(),
    }
    if order.client_order_id:
        item["order_ref"] = order.client_order_id
    if not done:  # working orders carry the session flag they were placed with (REC-IBIND)
        item["outsideRTH"] = bool(order.extra.get("outside_rth", False))
    if order.filled_quantity > 0:
        item["avgPrice"] = f"{order.average_price:.4f}".rstrip("0").rstrip(".")
    if order.order_type == "stop_limit":
        item["auxPrice"] = _price_str(order.stop_price)
    if order.status is SimStatus.REJECTED:
        item["order_cancellation_by_system_reason"] = order.reject_reason or "Rejected"
    return item


def order_status(order: SimOrder, status: str) -> dict[str, Any]:
    """``GET iserver/account/order/status/{orderId}`` (SPEC example shape)."""
    ins = order.instrument
    _, orig = _TYPE_DISPLAY[order.order_type]
    done = status in ("Filled", "Cancelled")
    body: dict[str, Any] = {
        "sub_type": None, "request_id": "209", "server_id": "0", "order_id": int(order.id),
        "conidex": ins.ids["conid"], "conid": int(ins.ids["conid"]), "symbol": ins.symbol,
        "side": "B" if order.side == "buy" else "S", "contract_description_1": ins.symbol,
        "listing_exchange": _EXCHANGE.get(ins.exchange, ins.exchange), "option_acct": "c",
        "company_name": ins.name, "size": f"{Decimal(0) if done else order.remaining:.1f}",
        "total_size": f"{order.quantity:.1f}", "currency": ins.currency, "account": order.account_id,
        "order_type": orig, "cum_fill": f"{order.filled_quantity:.1f}", "order_status": status,
        "order_ccp_status": "2" if status == "Filled" else "0",
        "order_status_description": "Order Filled" if status == "Filled" else f"Order {status}",
        "tif": order.time_in_force.upper(), "order_not_editable": done, "editable_fields": "" if done else "\u001e",
        "cannot_cancel_order": done, "deactivate_order": False, "sec_type": "STK",
        "order_time": _stamp(order).astimezone(UTC).strftime("%y%m%d%H%M%S"),
        "size_and_fills": _qty(order.quantity) if done else f"{_qty(order.filled_quantity)}/{_qty(order.quantity)}",
    }
    display, _ = _TYPE_DISPLAY[order.order_type]
    verb = ("Bought" if order.side == "buy" else "Sold") if status == "Filled" else order.side.capitalize()
    px = order.stop_price if order.order_type == "stop" else order.limit_price
    desc = f"{verb} {_qty(order.quantity)} {display}{' ' + _price_str(px) if px is not None else ''}, " \
           f"{order.time_in_force.capitalize()}"
    bg, fg = _COLORS.get(status, ("#FFFFFF", "#000000"))
    body.update({  # the rest of the SPEC example's keys
        "fg_color": fg, "bg_color": bg, "available_chart_periods": "#R|1", "order_description": desc,
        "order_description_with_contract": desc.replace(f" {_qty(order.quantity)} ",
                                                        f" {_qty(order.quantity)} {ins.symbol} ", 1),
        "alert_active": 1, "child_order_type": "0" if done else "3", "order_clearing_account": order.account_id,
        "exit_strategy_display_price": _price_str(px or order.average_price or None) or "0.00",
        "exit_strategy_chart_description": f"{verb} {_qty(order.filled_quantity)} @ {order.average_price:.2f}"
        if order.filled_quantity > 0 else desc,
        "exit_strategy_tool_availability": "1", "allowed_duplicate_opposite": True,
    })
    if order.limit_price is not None:
        body["limit_price"] = _price_str(order.limit_price)
    if order.stop_price is not None:
        body["stop_price"] = _price_str(order.stop_price)
    if order.filled_quantity > 0:
        body["average_price"] = f"{order.average_price:.2f}"
    return body


#: symbol → (group, sector, sectorGroup) as IBKR's contract details name them ("" for ETFs)
_SECTORS: dict[str, tuple[str, str, str]] = {
    "AAPL": ("Computers", "Technology", "Computers"),
    "MSFT": ("Software", "Technology", "Applications Software"),
    "TSLA": ("Auto Manufacturers", "Consumer, Cyclical", "Auto-Cars/Light Trucks"),
    "META": ("Internet", "Communications", "Internet Content-Entmnt"),
    "AMZN": ("Internet", "Communications", "E-Commerce/Products"),
    "NVDA": ("Semiconductors", "Technology", "Electronic Compo-Semicon"),
    "IBM": ("Computers", "Technology", "Computer Services"),
    "GOOGL": ("Internet", "Communications", "Web Portals/ISP"),
}
#: the ``allExchanges`` list IBKR gives a US listing (shortened from the SPEC example's)
_US_EXCHANGES = "AMEX,NYSE,CBOE,PHLX,CHX,ARCA,ISLAND,ISE,IDEAL,NASDAQQ,DRCTEDGE,BEX,BATS,EDGEA,PSX,BYX,IEX,MEMX,LTSE"


def position_item(engine: Engine, account: SimAccount, pos: SimPosition) -> dict[str, Any]:
    """One item of ``GET portfolio/{accountId}/positions/{pageId}`` in the fuller form the SPEC
    example and the recordings show (CAMPUS keys plus ``fullName``, ``group``, ``sector``,
    ``incrementRules``, ``displayRule`` …; ``strike`` a string, ``multiplier`` ``0.0`` there)."""
    ins = pos.instrument
    mkt = engine.price(ins.key)
    value = pos.quantity * mkt
    upl = (mkt - pos.average_price) * pos.quantity
    etf = ins.asset_class == "etf"
    if ins.ids.get("synthetic"):
        sector = ins.name.split(" CO ")[0].removeprefix("SYNTHETIC ").title()
        group = (sector, sector, sector)
    else:
        group = ("", "", "") if etf else _SECTORS.get(ins.symbol, ("", "", ""))
    return {
        "acctId": account.id, "conid": int(ins.ids["conid"]), "contractDesc": ins.symbol,
        "position": float(pos.quantity), "mktPrice": float(mkt), "mktValue": float(round(value, 2)),
        "currency": ins.currency, "avgCost": float(pos.average_price), "avgPrice": float(pos.average_price),
        "realizedPnl": float(round(pos.realized_pnl, 2)), "unrealizedPnl": float(round(upl, 2)),
        "exchs": None, "expiry": None, "putOrCall": None, "multiplier": 0.0, "strike": "0",
        "exerciseStyle": None, "conExchMap": [], "assetClass": "STK", "undConid": 0, "model": "",
        "incrementRules": [{"lowerEdge": 0.0, "increment": float(ins.tick_size)}],
        "displayRule": {"magnification": 0,
                        "displayRuleStep": [{"decimalDigits": 2, "lowerEdge": 0.0, "wholeDigits": 4}]},
        "time": 38, "chineseName": "", "allExchanges": _US_EXCHANGES,
        "listingExchange": _EXCHANGE.get(ins.exchange, ins.exchange), "countryCode": "US",
        "name": ins.name, "lastTradingDay": None, "group": group[0], "sector": group[1], "sectorGroup": group[2],
        "ticker": ins.symbol, "type": "ETF" if etf else "COMMON", "hasOptions": not ins.ids.get("synthetic"),
        "fullName": ins.symbol, "isUS": True, "isEventContract": False, "pageSize": 100,
    }
