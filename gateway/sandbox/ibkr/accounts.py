"""IBKR session, account, portfolio, allocation-group and contract-search endpoints
(ibkr.md §1, §3, §9, §10; ``iserver/secdef/search`` per the SPEC schema)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import SimAccount
from .seed import SUB_ACCOUNTS
from .state import VenueState, ib_error, ib_json, read_json
from .wire import position_item

__all__ = ["AccountApi"]

_SERVER = {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p, Dec 5, 2023 5:48:12 PM"}
_MAC = "12:B:B3:23:BF:A0"
_EXCH_DESC = {"XNAS": "NASDAQ", "XNYS": "NYSE", "ARCX": "ARCA"}
#: the SPEC multi-account example's ``allowedAssetTypes`` and ``chartPeriods`` (ibkr.md §3.1)
_ASSET_TYPES = ("STK,CFD,OPT,FOP,WAR,FUT,BAG,PDC,CASH,IND,BOND,BILL,FUND,SLB,News,CMDTY,IOPT,ICU,ICS,PHYSS,"
                "CRYPTO")
_SHORT_PERIODS = ["2h", "1d", "2d", "1w", "1m"]
_CHART_PERIODS = {"STK": ["*"], "CFD": ["*"], "OPT": _SHORT_PERIODS, "FOP": _SHORT_PERIODS, "WAR": ["*"],
                  "IOPT": ["*"], "FUT": ["*"], "CASH": ["*"], "IND": ["*"], "BOND": ["*"], "FUND": ["*"],
                  "CMDTY": ["*"], "PHYSS": ["*"], "CRYPTO": ["*"]}


class AccountApi:
    def __init__(self, state: VenueState) -> None:
        self.s = state

    # -- session --------------------------------------------------------------------------
    def _auth(self) -> dict[str, Any]:
        if self.s.session.authenticated:
            return {"authenticated": True, "competing": False, "connected": True, "message": "", "MAC": _MAC,
                    "serverInfo": _SERVER, "hardware_info": "3b0679ee|98:A2:B3:23:BC:A0", "fail": ""}
        return {"authenticated": False, "competing": False, "connected": self.s.session.gateway_login, "MAC": _MAC}

    async def auth_status(self, request: Request) -> Response:
        """POST (or GET) iserver/auth/status"""
        return ib_json(self._auth())

    async def tickle(self, request: Request) -> Response:
        """POST (or GET) tickle"""
        return ib_json({"session": self.s.session.session_id, "ssoExpires": 460311, "collission": False,
                        "userId": 123456789, "hmds": {"error": "no bridge"},
                        "iserver": {"authStatus": self._auth()}})

    async def ssodh_init(self, request: Request) -> Response:
        """POST iserver/auth/ssodh/init: reopens the brokerage session while the gateway login holds."""
        session = self.s.session
        if not session.gateway_login:
            return ib_error("not authenticated", 401, with_code=True)
        if not session.authenticated:
            session.login()
        return ib_json({"authenticated": True, "connected": True, "competing": False})

    async def logout(self, request: Request) -> Response:
        """POST logout"""
        self.s.session.logout()
        return ib_json({"status": True})

    # -- accounts -------------------------------------------------------------------------
    async def accounts(self, request: Request) -> Response:
        """GET iserver/accounts: the FA flavour; also the pre-flight of the order endpoints"""
        session = self.s.session
        session.preflight = True
        ids = [self.s.master, *SUB_ACCOUNTS]
        props = {a: {"hasChildAccounts": a == self.s.master, "supportsCashQty": True, "liteUnderPro": False,
                     "noFXConv": False, "isProp": False, "supportsFractions": False, "allowCustomerTime": False,
                     "autoFx": False} for a in ids}
        return ib_json({
            "accounts": ids, "acctProps": props,
            "aliases": {"All": "All", **{a: self.s.engine.accounts[a].name or a for a in ids}},
            "allowFeatures": {"showGFIS": True, "showEUCostReport": False, "allowEventContract": True,
                              "allowFXConv": True, "allowFinancialLens": False, "allowMTA": True,
                              "allowTypeAhead": True, "allowEventTrading": True, "snapshotRefreshTimeout": 30,
                              "liteUser": False, "showWebNews": True, "research": True, "debugPnl": True,
                              "showTaxOpt": True, "showImpactDashboard": True, "allowDynAccount": False,
                              "allowCrypto": False, "allowFA": True, "allowLiteUnderPro": False,
                              "allowedAssetTypes": _ASSET_TYPES, "restrictTradeSubscription": False,
                              "showUkUserLabels": False, "sideBySide": True},
            "chartPeriods": _CHART_PERIODS,
            "groups": ["All", *self.s.groups], "profiles": [],
            "selectedAccount": session.selected, "serverInfo": _SERVER,
            "sessionId": f"{session.session_id[:8]}.0000001e", "isFT": False, "isPaper": True,
        })

    async def switch(self, request: Request) -> Response:
        """POST iserver/account ``{"acctId": ...}``"""
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("acctId"):
            return ib_error("Bad Request: acctId is required", 400)
        target = str(body["acctId"])
        session = self.s.session
        if target not in self.s.engine.accounts and target not in self.s.groups and target != "All":
            return ib_error("Invalid account ID", 500)
        if target == session.selected:
            return ib_json({"success": "Account already set"})
        session.drop_chains()
        session.selected = target
        session.switches += 1
        return ib_json({"set": True, "acctId": target})

    def _portfolio_account(self, account: SimAccount, fa_client: bool) -> dict[str, Any]:
        return {
            "PrepaidCrypto-Z": False, "PrepaidCrypto-P": False, "accountAlias": None, "accountId": account.id,
            "accountStatus": 1590724800000, "accountTitle": account.name, "accountVan": account.id,
            "acctCustType": "INDIVIDUAL" if fa_client else "LLC", "brokerageAccess": True,
            "businessType": "INDEPENDENT", "category": "", "clearingStatus": "O", "covestor": False,
            "currency": account.currency, "desc": account.id, "displayName": account.name,
            "faclient": fa_client, "ibEntity": "IBLLC-US", "id": account.id, "noClientTrading": False,
            "parent": {"mmc": [], "accountId": self.s.master if fa_client else "", "isMParent": False,
                       "isMChild": False, "isMultiplex": False},
            "trackVirtualFXPortfolio": False, "tradingType": "STKNOPT", "type": "DEMO",
        }

    async def portfolio_accounts(self, request: Request) -> Response:
        """GET portfolio/accounts"""
        return ib_json([self._portfolio_account(self.s.engine.accounts[self.s.master], False)])

    async def subaccounts(self, request: Request) -> Response:
        """GET portfolio/subaccounts (up to 100)"""
        return ib_json([self._portfolio_account(self.s.engine.accounts[a], True) for a in SUB_ACCOUNTS])

    async def positions(self, request: Request) -> Response:
        """GET portfolio/{accountId}/positions/{pageId}: 100 per page from 0, ``[]`` past the end"""
        account = self.s.engine.accounts.get(request.path_params["account"])
        if account is None:
            return ib_error("Invalid account ID", 500)
        try:
            page = int(request.path_params["page"])
        except ValueError:
            return ib_error("Invalid page", 400)
        held = sorted((p for p in account.positions.values() if p.quantity != 0),
                      key=lambda p: p.instrument.symbol)
        chunk = held[page * 100:(page + 1) * 100] if page >= 0 else []
        return ib_json([position_item(self.s.engine, account, p) for p in chunk])

    async def ledger(self, request: Request) -> Response:
        """GET portfolio/{accountId}/ledger: cash and values per currency plus ``BASE`` (CAMPUS
        #get-ledger shape; every sandbox account is USD)."""
        account = self.s.engine.accounts.get(request.path_params["account"])
        if account is None:
            return ib_error("Invalid account ID", 500)
        engine = self.s.engine
        stock = sum((p.quantity * engine.price(p.instrument.key) for p in account.positions.values()), Decimal(0))
        upl = sum(((engine.price(p.instrument.key) - p.average_price) * p.quantity
                   for p in account.positions.values()), Decimal(0))
        realized = sum((p.realized_pnl for p in account.positions.values()), Decimal(0))
        now = int(time.time())

        def row(key: str) -> dict[str, Any]:
            return {"commoditymarketvalue": 0.0, "futuremarketvalue": 0.0, "settledcash": float(account.cash),
                    "exchangerate": 1, "sessionid": 1, "cashbalance": float(account.cash),
                    "corporatebondsmarketvalue": 0.0, "warrantsmarketvalue": 0.0,
                    "netliquidationvalue": float(round(account.cash + stock, 2)), "interest": 0.0,
                    "unrealizedpnl": float(round(upl, 2)), "stockmarketvalue": float(round(stock, 2)),
                    "moneyfunds": 0.0, "currency": account.currency if key != "BASE" else "BASE",
                    "realizedpnl": float(round(realized, 2)), "funds": 0.0, "acctcode": account.id,
                    "issueroptionsmarketvalue": 0.0, "key": "LedgerList", "timestamp": now, "severity": 0,
                    "stockoptionmarketvalue": 0.0, "futuresonlypnl": 0.0, "tbondsmarketvalue": 0.0,
                    "futureoptionmarketvalue": 0.0, "cashbalancefxsegment": 0.0, "secondkey": key,
                    "tbillsmarketvalue": 0.0, "endofbundle": 1, "dividends": 0.0, "cryptocurrencyvalue": 0.0}

        return ib_json({account.currency: row(account.currency), "BASE": row("BASE")})

    async def invalidate(self, request: Request) -> Response:
        """POST portfolio/{accountId}/positions/invalidate"""
        return ib_json({"message": "success"})

    # -- allocation groups ----------------------------------------------------------------
    async def groups(self, request: Request) -> Response:
        """GET iserver/account/allocation/group"""
        return ib_json({"data": [{"allocation_method": g.method, "size": len(g.members), "name": g.name}
                                 for g in self.s.groups.values()]})

    async def group_single(self, request: Request) -> Response:
        """POST iserver/account/allocation/group/single ``{"name": ...}``"""
        body = await read_json(request)
        group = self.s.groups.get(str(body.get("name"))) if isinstance(body, dict) else None
        if group is None:
            return ib_error("Group not found", 500)
        accounts: list[dict[str, Any]] = []
        for n, member in enumerate(group.members):
            item: dict[str, Any] = {"name": member}
            if group.amounts:
                item["amount"] = group.amounts[n]
            accounts.append(item)
        return ib_json({"name": group.name, "accounts": accounts, "default_method": group.method})

    async def allocatable(self, request: Request) -> Response:
        """GET iserver/account/allocation/accounts"""
        out = []
        for a in SUB_ACCOUNTS:
            acct = self.s.engine.accounts[a]
            value = sum((p.quantity * self.s.engine.price(p.instrument.key) for p in acct.positions.values()),
                        acct.cash)
            out.append({"data": [{"value": f"{value:.2f}", "key": "NetLiquidation"},
                                 {"value": f"{acct.cash:.2f}", "key": "AvailableEquity"}], "name": a})
        return ib_json({"accounts": out})

    # -- contracts and questions ----------------------------------------------------------
    async def secdef_search(self, request: Request) -> Response:
        """GET ``?symbol=`` or POST ``{"symbol", "name", "secType"}`` iserver/secdef/search.

        ``symbol`` matches the ticker, or an ISIN (as the sandbox's stand-in for IBKR's ISIN
        look-up); ``name=true`` matches part of the company name."""
        body = await read_json(request) if request.method == "POST" else dict(request.query_params)
        if not isinstance(body, dict) or not body.get("symbol"):
            return ib_error("Bad Request: symbol required", 400)
        text = str(body["symbol"]).strip().upper()
        by_name = str(body.get("name", "")).lower() == "true" or body.get("name") is True
        hits = []
        for ins in self.s.engine.instruments.values():
            if by_name and text in ins.name.upper() or not by_name and text in (ins.symbol.upper(), ins.isin):
                hits.append({
                    "conid": ins.ids["conid"], "companyHeader": f"{ins.name} - {_EXCH_DESC.get(ins.exchange, '')}",
                    "companyName": ins.name, "symbol": ins.symbol, "description": _EXCH_DESC.get(ins.exchange, ""),
                    "restricted": None, "fop": None, "opt": None, "war": None,
                    "sections": [{"secType": "STK"}],
                })  # no ``issuers`` / ``bondid``: IBKR sends those on bond results only
        return ib_json(hits)

    async def suppress(self, request: Request) -> Response:
        """POST iserver/questions/suppress ``{"messageIds": [...]}``"""
        body = await read_json(request)
        ids = body.get("messageIds") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return ib_error("Bad Request: messageIds required", 400)
        self.s.session.suppressed.update(str(i) for i in ids)
        return ib_json({"status": "submitted"})

    async def suppress_reset(self, request: Request) -> Response:
        """POST iserver/questions/suppress/reset"""
        self.s.session.suppressed.clear()
        return ib_json({"status": "submitted"})
