"""Engine objects → ETNA resources (``OrderResource``, ``PositionResource``, accounts, equities),
and the records the ``filter`` language and ``sortField`` read."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..engine import SimAccount, SimOrder, SimPosition, SimStatus
from ..instruments import SimInstrument
from .auth import EtnaUser
from .wire import ASSET_CLASS_TYPES, ORDER_STATUS_CODES, format_ticks, num, ticks_of

__all__ = ["ORDER_ID_BASE", "account_resource", "balance_resource", "equity_resource", "order_record", "order_resource",
           "position_record", "position_resource", "security_id", "wire_id", "wire_status"]

#: wire order ``Id`` = ORDER_ID_BASE + the engine's order id
ORDER_ID_BASE = 80_300


def wire_id(order: SimOrder) -> int:
    return ORDER_ID_BASE + int(order.id)


def security_id(ins: SimInstrument) -> int:
    return int(ins.ids["etna"])


def wire_status(order: SimOrder, now: float) -> str:
    """The ETNA ``Status`` word of an engine order; ``now`` is the event loop's time."""
    s = order.status
    if s in (SimStatus.INACTIVE, SimStatus.PENDING_NEW):
        return "PendingNew"
    if s in (SimStatus.WORKING, SimStatus.PARTIALLY_FILLED):
        if now < order.extra.get("replace_until", 0.0):
            return "PendingReplace"
        return "New" if s is SimStatus.WORKING else "PartiallyFilled"
    if s is SimStatus.CANCEL_PENDING:
        return "PendingCancel"
    if s is SimStatus.EXPIRED:
        return "DoneForDay" if order.time_in_force == "day" else "Expired"
    return {SimStatus.FILLED: "Filled", SimStatus.CANCELED: "Canceled", SimStatus.REJECTED: "Rejected"}[s]


_REQUEST_STATUS = {"PendingNew": "RequireValidation", "PendingReplace": "RequireValidation",
                   "PendingCancel": "RequireValidation", "New": "Executing", "PartiallyFilled": "Executing",
                   "Rejected": "Rejected"}


def _dates(order: SimOrder) -> tuple[int, int]:
    salt = int(order.id)
    return ticks_of(order.created_at, salt), ticks_of(order.updated_at, salt + 3)


def order_resource(order: SimOrder, now: float) -> dict[str, Any]:
    """``OrderResource`` as ``GET v1.0/accounts/{id}/orders/{orderId}`` answers it."""
    status = wire_status(order, now)
    created, changed = _dates(order)
    last = order.fills[-1] if order.fills else None
    open_ = order.is_open and status != "PendingNew"
    x = order.extra
    body: dict[str, Any] = {
        "Id": wire_id(order), "SecurityId": security_id(order.instrument), "Quantity": num(order.quantity),
        "Price": num(order.limit_price), "StopPrice": num(order.stop_price), "ClientId": order.client_order_id,
        "ExecutedQuantity": num(order.filled_quantity), "LastPrice": num(last.price if last else None),
        "LastQuantity": num(last.quantity if last else None),
        "LeavesQuantity": num(order.remaining if open_ else Decimal(0)),
        "AveragePrice": num(order.average_price), "Side": x["wire_side"], "Date": format_ticks(changed),
        "TransactionDate": format_ticks(changed), "SettDate": "0001-01-01T00:00:00Z", "Status": status,
        "ExecutionStatus": status, "Type": x["wire_type"],
        "RequestStatus": _REQUEST_STATUS.get(status, "Complete"), "Target": x.get("target", "New"),
        "TimeInForce": x["wire_tif"], "ExecInst": x.get("exec_inst", 0),
        "ExpireDate": format_ticks(ticks_of(order.expires_at)),
        "AccountId": int(order.account_id), "UserId": x["user_id"], "RequestId": x["request_id"],
        "StateId": x.get("state_id", 0), "ParentId": -1, "Legs": [],
        "TrailingStopAmountType": "Absolute", "TrailingStopAmount": 0,
        "TrailingLimitAmountType": "Absolute", "TrailingLimitAmount": 0,
        "CreateDate": format_ticks(created), "InitialType": x["wire_type"], "IsExternal": False,
        # the placement answer carries the request's instructions; later reads show {} (the docs' examples)
        "ExecutionInstructions": {"CorrelationId": x["correlation_id"], "CreateOrderRequestTimeUnix": str(created)}
        if status == "PendingNew" else {},
        "TransType": x.get("trans_type", "New"), "ValidationsToBypass": 0, "ParentRequestId": 0,
        "SettlementDate": "0001-01-01T00:00:00Z",
    }
    if status not in ("PendingNew",):
        body.update({"Exchange": "Auto", "ExecutionVenue": "Etna Emulator", "ExecBrocker": "Auto"})
    if status == "DoneForDay":
        body.update({"Description": "Expired by OMS", "Comment": ""})
    elif order.status is SimStatus.REJECTED:
        body.update({"Description": order.reject_reason or "Rejected", "Comment": ""})
    if order.filled_quantity > 0 and last is not None:
        body["ExecId"] = str(173_657_800 + int(last.id))
        body["CounterPartyOrderId"] = order.client_order_id or str(wire_id(order))  # as the filled example
    return body


def order_record(order: SimOrder, now: float) -> dict[str, Any]:
    created, changed = _dates(order)
    return {"Id": wire_id(order), "CreateDate": created, "ModifyDate": changed, "Quantity": order.quantity,
            "SecurityId": security_id(order.instrument), "Symbol": order.instrument.symbol,
            "Status": ORDER_STATUS_CODES[wire_status(order, now)]}


def position_resource(account: SimAccount, pos: SimPosition, price: Decimal) -> dict[str, Any]:
    """``PositionResource`` of ``GET v1.0/accounts/{id}/positions``."""
    ins, x = pos.instrument, pos.extra
    return {
        "Id": x["Id"], "AccountId": int(account.id), "SecurityId": security_id(ins), "Symbol": ins.symbol,
        "Name": ins.symbol, "CompanyName": ins.name, "SecurityCurrency": ins.currency,
        "SecurityType": ASSET_CLASS_TYPES.get(ins.asset_class, "CommonStock"), "ContractSize": 1,
        "CostBasis": num(pos.quantity * pos.average_price),
        "DailyCostBasis": num(pos.quantity * x.get("eod_price", pos.average_price)),
        "CreateDate": format_ticks(x["CreateDate"]), "ModifyDate": format_ticks(x["ModifyDate"]),
        "Quantity": num(pos.quantity), "RealizedProfitLoss": num(pos.realized_pnl),
        "AverageOpenPrice": num(pos.average_price), "AverageClosePrice": 0, "StopLossPrice": 0,
        "TakeProfitPrice": 0, "DailyCloseProfitLoss": 0, "ExcessChanges": 0,
        "DayQuantity": num(x.get("DayQuantity", Decimal(0))), "MarketValueEOD": num(pos.quantity * price),
    }


def position_record(pos: SimPosition) -> dict[str, Any]:
    x = pos.extra
    return {"Id": x["Id"], "CreateDate": x["CreateDate"], "ModifyDate": x["ModifyDate"], "Quantity": pos.quantity,
            "SecurityId": security_id(pos.instrument), "Symbol": pos.instrument.symbol}


def account_resource(account: SimAccount, owners: list[EtnaUser]) -> dict[str, Any]:
    """An item of ``GET v1.0/users/{userId}/accounts``."""
    x = account.extra
    return {
        "Id": int(account.id), "ClearingAccount": x.get("ClearingAccount", account.id), "AccessType": "Owner",
        "MarginType": x.get("MarginType", "Margin"), "OwnerType": x.get("OwnerType", "IndividualCustomer"),
        "Enabled": True, "ClearingFirm": "PaperTrading", "IsAverageAccount": False,
        "Owners": [
            {"UserId": u.id, "FirstName": u.first_name, "MiddleName": "", "LastName": u.last_name,
             "Login": u.login, "Email": u.email, "Role": 0, "AddedDate": "2019-01-21T15:00:00Z",
             "Salutation": "NoSalutation", "Suffix": "NoSuffix"}
            for u in owners
        ],
    }


_ADDED = ticks_of(datetime(2012, 11, 29, 16, 5, 43, 993000, tzinfo=UTC))


def equity_resource(ins: SimInstrument) -> dict[str, Any]:
    """``GET v1.0/equities/{id}``."""
    return {
        "Id": security_id(ins), "Symbol": ins.symbol, "Description": ins.name, "Exchange": ins.exchange,
        "Currency": ins.currency, "AddedDate": format_ticks(_ADDED), "ModifyDate": format_ticks(_ADDED + 10),
        "Type": ASSET_CLASS_TYPES.get(ins.asset_class, "CommonStock"), "Precision": 2, "VolumePrecision": 0,
        "TickSize": num(ins.tick_size), "Enabled": True, "AllowTrade": True, "AllowMargin": True, "AllowShort": True,
        "Isin": ins.isin,  # a sandbox addition: the published EquityResource has no ISIN
    }


#: share of the gross position value ETNA's example keeps as maintenance margin (7692.3 of 25413)
_MAINTENANCE = Decimal("0.3")
_BUYING_POWER = {"Margin": Decimal(2), "DayTrader": Decimal(4), "Cash": Decimal(1)}


def balance_resource(account: SimAccount, prices: dict[str, Decimal], pending_orders: int) -> dict[str, Any]:
    """``GET v1.0/accounts/{accountId}/info`` (the docs' key set, lower camel case, USD numbers):
    ``excess`` is equity less maintenance margin; stock buying power is ``excess`` × 2 on a
    ``Margin`` account (× 4 day-trading), as in the docs' example."""
    long_value = short_value = open_pl = Decimal(0)
    for (key, _), pos in account.positions.items():
        value = pos.quantity * prices[key]
        if value >= 0:
            long_value += value
        else:
            short_value += value
        open_pl += (prices[key] - pos.average_price) * pos.quantity
    market = long_value + short_value
    equity = account.cash + market
    maintenance = (_MAINTENANCE * (long_value - short_value)).quantize(Decimal("0.01"))
    excess = equity - maintenance
    power = _BUYING_POWER.get(str(account.extra.get("MarginType")), Decimal(1))
    cost = sum((p.quantity * p.average_price for p in account.positions.values()), Decimal(0))
    return {
        "cash": num(account.cash), "netCash": num(account.cash), "excess": num(excess), "changeAbsolute": 0,
        "changePercent": 0, "equityTotal": num(equity), "pendingOrdersCount": pending_orders,
        "netLiquidity": num(market), "stockLongMarketValue": num(long_value),
        "stockShortMarketValue": num(short_value), "optionLongMarketValue": 0, "optionShortMarketValue": 0,
        "forexLongMarketValue": 0, "forexShortMarketValue": 0, "dayTrades": 0,
        "stockBuyingPower": num(excess * power), "optionBuyingPower": num(excess),
        "forexBuyingPower": num(excess * power), "dayTradingBuyingPower": num(excess * power * 2),
        "pendingCash": 0, "maintenanceMargin": num(maintenance), "optionMaintenanceMargin": 0,
        "openPL": num(open_pl), "openPLDay": 0, "openPLPercent": num(open_pl / cost * 100) if cost else 0,
        "closePL": 0, "marketValue": num(market), "totalPL": num(open_pl),
    }
