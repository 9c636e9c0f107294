"""The Alice Blue (ANT API v2 / "A3" Open API) paper venue under ``/open-api/od/v1/``.

Wire format per ``shared/brokers/aliceblue.md``: checksum login at ``vendor/getUserDetails``
(``stat`` / ``emsg``), then ``Authorization: Bearer <userSession>`` on every call (a missing,
unknown or expired session answers HTTP 401 ``{"status": "Not_Ok", "message": "EC087"}``);
``{"status": "Ok", "message": "Success", "result": [...]}`` envelopes; failures as a bare EC code
with HTTP 200; empty books as EC916 / EC920 / EC922 / EC926.

Seeded clients: ``912444`` (long-term DEMAT holdings, an MTF holding carried forward, intraday
positions, ₹5,00,000 cash) and ``912445`` (nothing at all: every book answers its "empty" code).
Their login credentials are :data:`USERS`; the venue's ``credentials`` are those of ``912444``.

Control routes beside the shared ``/__sandbox__`` ones: ``POST /__sandbox__/aliceblue/sessions/expire``
ends every session (the next call answers EC087, to test re-login).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from ..control import ControlPlane
from ..engine import Engine, EngineConfig
from ..instruments import CATALOGUE
from ..venue import Venue
from .orders import OrderRoutes
from .portfolio import PortfolioRoutes
from .state import AliceState, DayLine, User
from .wire import failure

__all__ = ["BASE_PATH", "USERS", "create_venue"]

BASE_PATH = "/open-api/od/v1/"
CONTRACT_MASTER_PATH = "/restpy/contract_master"

USERS: dict[str, User] = {
    "912444": User("912444", "sbx-auth-7Hq2Lm9Xc4", "sbx-secret-R8v1Tn5Kp0Wd3Zs6", "ANANYA RAO"),
    "912445": User("912445", "sbx-auth-3Jd8Pw1Nf6", "sbx-secret-M2c7Yq4Hx9Lb5Vt0", "KARAN MEHTA"),
}

Handler = Callable[[Request, str], Awaitable[Response]]


def _authed(state: AliceState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        client_id = state.client_for(request.headers.get("authorization"))
        if client_id is None:
            return failure("EC087", 401)
        return await handler(request, client_id)

    return endpoint


def _error_response(status: int) -> Response:
    return failure("EC087" if status == 401 else "EC003", status)


def _seed(state: AliceState) -> None:
    engine = state.engine
    state.add_user(USERS["912444"], Decimal("500000.00"))
    state.add_user(USERS["912445"], Decimal("100000.00"))
    cid = "912444"
    # long-term DEMAT holdings (start of day): dp = free in the DP account, t1 = bought yesterday,
    # collateral = pledged for margin
    for key, dp, t1, coll, avg in (("IDEA", 36, 0, 0, "7.17"), ("RELIANCE", 40, 5, 10, "1204.35"),
                                   ("INFY", 25, 0, 0, "1502.10"), ("ETERNAL", 150, 0, 0, "212.40")):
        engine.seed_position(cid, key, Decimal(dp + t1 + coll), avg, "LONGTERM",
                             holding={"dp": dp, "t1": t1, "collateral": coll, "average_price": avg})
    # MTF: TCS held under margin funding, settled; INFY bought yesterday under MTF (t1 in holdings/MTF,
    # and still a carried-forward line in the position book)
    engine.seed_position(cid, "TCS", Decimal(8), "3890.00", "MTF",
                         holding={"dp": 8, "t1": 0, "collateral": 0, "average_price": "3890.00"})
    engine.seed_position(cid, "INFY", Decimal(10), "1850.25", "MTF",
                         holding={"dp": 0, "t1": 10, "collateral": 0, "average_price": "1850.25"},
                         overnight={"exchange": "NSE", "quantity": 10, "price": "1850.25"})
    # today's intraday trades
    for key, side, qty, price in (("ETERNAL", "buy", 100, "278.20"), ("SBIN", "sell", 50, "815.10"),
                                  ("RELIANCE", "buy", 10, "1288.50")):
        line: DayLine = state.day.line(cid, "NSE", key, "INTRADAY")
        line.add(side, qty, Decimal(price))
        engine.seed_position(cid, key, Decimal(qty if side == "buy" else -qty), price, "INTRADAY")


def create_venue(config: EngineConfig | None = None) -> Venue:
    """The Alice Blue venue: NSE and BSE listings of the catalogue's INR instruments."""
    engine = Engine(tuple(i for i in CATALOGUE if i.currency == "INR"), config)
    state = AliceState(engine)
    _seed(state)
    orders, portfolio = OrderRoutes(state), PortfolioRoutes(state)
    control = ControlPlane(engine, _error_response)
    b = BASE_PATH

    async def expire(request: Request) -> Response:
        return JSONResponse({"expired": state.expire_sessions()})

    routes = [
        Route(f"{b}vendor/getUserDetails", portfolio.login, methods=["POST"]),
        Route(f"{b}orders/placeorder", _authed(state, orders.placeorder), methods=["POST"]),
        Route(f"{b}orders/modify", _authed(state, orders.modify), methods=["POST"]),
        Route(f"{b}orders/cancel", _authed(state, orders.cancel), methods=["POST"]),
        Route(f"{b}orders/book", _authed(state, orders.book), methods=["GET"]),
        Route(f"{b}orders/history", _authed(state, orders.history), methods=["POST"]),
        Route(f"{b}orders/trades", _authed(state, orders.trades), methods=["GET"]),
        Route(f"{b}orders/positions/sqroff", _authed(state, orders.sqroff), methods=["POST"]),
        Route(f"{b}positions", _authed(state, portfolio.positions), methods=["GET"]),
        Route(f"{b}holdings/{{product}}", _authed(state, portfolio.holdings), methods=["GET"]),
        Route(f"{b}conversion", _authed(state, portfolio.conversion), methods=["POST"]),
        Route(f"{b}limits/", _authed(state, portfolio.limits), methods=["GET"]),
        Route(f"{b}profile/", _authed(state, portfolio.profile), methods=["GET"]),
        Route(CONTRACT_MASTER_PATH, portfolio.contract_master, methods=["GET"]),
        Route("/__sandbox__/aliceblue/sessions/expire", expire, methods=["POST"]),
        *control.routes(),
    ]
    app = Router(routes, redirect_slashes=False)  # `limits` without its slash is a 404, as upstream
    user = USERS["912444"]
    return Venue(
        name="aliceblue",
        app=control.middleware(app),
        engine=engine,
        control=control,
        base_path=b,
        credentials={"user_id": user.user_id, "auth_code": user.auth_code, "api_secret": user.api_secret},
        options={"contract_master_url": CONTRACT_MASTER_PATH},
    )
