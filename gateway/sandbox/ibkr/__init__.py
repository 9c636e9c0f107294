"""The IBKR sandbox: a stand-in for the Client Portal gateway (``https://localhost:5000/v1/api/``)
with a Financial Advisor session (ibkr.md).

Wire API under ``/v1/api/`` (the WebSocket ``/v1/api/ws`` included); control plane under ``/__sandbox__/`` plus, for this venue:

* ``POST /__sandbox__/ibkr/session`` ``{"authenticated": false}`` logs the brokerage session out
  (every wire call but auth status / tickle then answers 401); ``{"authenticated": true}`` logs in
  again (a fresh session: master selected, pre-flight and the empty first orders snapshot again).
  ``GET`` shows the session (selected account, switch count).
* ``POST /__sandbox__/ibkr/pacing`` ``{"enabled": false}`` or any :class:`.pacing.Pacing` field;
  ``{"reset": true}`` empties the windows and the penalty box. The default is the documented pacing.
* ``POST /__sandbox__/ibkr/ws`` ``{"silent": true}`` keeps the WebSocket's sockets open but sends
  nothing (no ``sor`` frame, no heartbeat) until ``{"silent": false}``; ``{"refuse": true}`` closes
  them and refuses new ones until ``{"refuse": false}``. ``GET`` shows the flags and socket counts.

Keyword arguments of :func:`create_venue` (``SandboxRunner(venue_options={"ibkr": {...}})``):

* ``tls=True`` serves HTTPS with a fresh self-signed certificate; the venue's options then say
  ``verify_tls = false``.
* ``pacing`` a :class:`.pacing.Pacing` or a dict of its fields (``{"slow_window": 0.2}``); the
  default is the documented pacing. A non-default pacing also puts the matching adapter options
  (``slow_interval``, ``global_rate``) into the venue's options, so that a connection built from
  them stays under what this venue enforces.
* ``ws_heartbeat`` seconds between the WebSocket's ``hb`` frames (10, as IBKR); see :mod:`.ws`.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..control import ControlPlane
from ..engine import Engine, EngineConfig
from ..venue import Venue
from .accounts import AccountApi
from .orders import OrderApi
from .pacing import Pacing
from .seed import instruments, seed, seed_orders
from .state import BASE_PATH, VenueState, ib_error, ib_json, read_json
from .tls import self_signed
from .ws import OrderStream

__all__ = ["create_venue"]

#: wire paths that answer while the brokerage session is logged out
_OPEN_PATHS = {"iserver/auth/status", "tickle", "iserver/auth/ssodh/init", "logout"}
#: the keep-alive requests that leave a pending reply chain alone (every other request voids it)
_KEEPALIVE = {"iserver/auth/status", "tickle"}


def _gate(state: VenueState, app: ASGIApp) -> ASGIApp:
    """Pacing (429), authentication (401) and the reply chain's end in front of the wire API: any
    request but a reply or a keep-alive voids the pending reply questions."""

    async def gated(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(BASE_PATH):
            await app(scope, receive, send)
            return
        rel = path[len(BASE_PATH):].strip("/")
        reason = state.pacer.check(scope["method"], rel)
        if reason is not None:
            await ib_error(reason, 429)(scope, receive, send)
            return
        if not state.session.authenticated and rel not in _OPEN_PATHS:
            await ib_error("not authenticated", 401, with_code=True)(scope, receive, send)
            return
        if rel not in _KEEPALIVE and not rel.startswith("iserver/reply/"):
            # IBKR: "Submitting other orders or other requests will cancel the order" (a read too)
            state.session.drop_chains()
        await app(scope, receive, send)

    return gated


def _control_routes(state: VenueState, stream: OrderStream) -> list[Route]:
    async def session(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request) or {}
            if body.get("authenticated") is False:
                state.session.logout(gateway_login=bool(body.get("gateway_login", False)))
            elif body.get("authenticated") is True:
                state.session.login()
        s = state.session
        return ib_json({"authenticated": s.authenticated, "gateway_login": s.gateway_login, "selected": s.selected,
                        "switches": s.switches, "preflight": s.preflight, "pending_replies": len(s.chains)})

    async def pacing(request: Request) -> Response:
        body = await read_json(request) or {}
        names = {f.name for f in fields(Pacing)}
        for key, value in body.items():
            if key in names:
                setattr(state.pacer.pacing, key, type(getattr(state.pacer.pacing, key))(value))
        if body.get("reset") or body.get("enabled") is False:
            state.pacer.reset()
        return ib_json({**asdict(state.pacer.pacing), "violations": state.pacer.violations})

    return [Route("/__sandbox__/ibkr/session", session, methods=["GET", "POST"]),
            Route("/__sandbox__/ibkr/pacing", pacing, methods=["GET", "POST"]),
            Route("/__sandbox__/ibkr/ws", stream.control, methods=["GET", "POST"])]


def _wire_routes(state: VenueState, stream: OrderStream) -> list[BaseRoute]:
    a, o = AccountApi(state), OrderApi(state)
    p = BASE_PATH
    return [
        WebSocketRoute(f"{p}ws", stream.endpoint),
        Route(f"{p}iserver/auth/status", a.auth_status, methods=["GET", "POST"]),
        Route(f"{p}iserver/auth/ssodh/init", a.ssodh_init, methods=["POST"]),
        Route(f"{p}tickle", a.tickle, methods=["GET", "POST"]),
        Route(f"{p}logout", a.logout, methods=["POST"]),
        Route(f"{p}iserver/accounts", a.accounts, methods=["GET"]),
        Route(f"{p}iserver/account", a.switch, methods=["POST"]),
        Route(f"{p}iserver/account/orders", o.live, methods=["GET"]),
        Route(f"{p}iserver/account/order/status/{{order_id}}", o.status, methods=["GET"]),
        Route(f"{p}iserver/account/allocation/group", a.groups, methods=["GET"]),
        Route(f"{p}iserver/account/allocation/group/single", a.group_single, methods=["POST"]),
        Route(f"{p}iserver/account/allocation/accounts", a.allocatable, methods=["GET"]),
        Route(f"{p}iserver/account/{{account}}/orders", o.place, methods=["POST"]),
        Route(f"{p}iserver/account/{{account}}/order/{{order_id}}", o.modify, methods=["POST"]),
        Route(f"{p}iserver/account/{{account}}/order/{{order_id}}", o.cancel, methods=["DELETE"]),
        Route(f"{p}iserver/reply/{{reply_id}}", o.reply, methods=["POST"]),
        Route(f"{p}iserver/questions/suppress", a.suppress, methods=["POST"]),
        Route(f"{p}iserver/questions/suppress/reset", a.suppress_reset, methods=["POST"]),
        Route(f"{p}iserver/secdef/search", a.secdef_search, methods=["GET", "POST"]),
        Route(f"{p}portfolio/accounts", a.portfolio_accounts, methods=["GET"]),
        Route(f"{p}portfolio/subaccounts", a.subaccounts, methods=["GET"]),
        Route(f"{p}portfolio/{{account}}/positions/invalidate", a.invalidate, methods=["POST"]),
        Route(f"{p}portfolio/{{account}}/ledger", a.ledger, methods=["GET"]),
        Route(f"{p}portfolio/{{account}}/positions/{{page}}", a.positions, methods=["GET"]),
    ]


def _pacing(value: Pacing | dict[str, Any] | None) -> Pacing | None:
    if value is None or isinstance(value, Pacing):
        return value
    return replace(Pacing(), **value)


def _client_options(pacing: Pacing) -> dict[str, Any]:
    """Adapter options that keep a connection under ``pacing`` (10 % margin, like the defaults)."""
    if not pacing.enabled:
        return {"global_rate": 0, "slow_interval": 0, "tickle_interval_min": 0}
    return {"global_rate": round(0.8 * pacing.global_limit / pacing.global_window, 3),
            "global_window": pacing.global_window, "slow_interval": round(pacing.slow_window * 1.1, 3)}


def create_venue(config: EngineConfig | None = None, *, tls: bool = False,
                 pacing: Pacing | dict[str, Any] | None = None, ws_heartbeat: float = 10.0) -> Venue:
    """The IBKR venue (see the module docstring); ``pacing`` defaults to the documented limits."""
    engine = Engine(instruments(), config)
    seed(engine)
    state = VenueState(engine)
    seed_orders(engine, state.next_order_id, state.coids)
    options: dict[str, Any] = {}
    custom = _pacing(pacing)
    if custom is not None:
        state.pacer.pacing = custom
        options.update(_client_options(custom))

    def error_response(status: int) -> Response:
        return ib_error({429: "Too many requests", 401: "not authenticated"}.get(status, "Service Unavailable"),
                        status, with_code=status != 429)

    control = ControlPlane(engine, error_response)
    stream = OrderStream(state, ws_heartbeat)
    app = Starlette(routes=[*control.routes(), *_control_routes(state, stream), *_wire_routes(state, stream)])
    wrapped = control.middleware(_gate(state, app))
    certfile = keyfile = None
    if tls:
        certfile, keyfile = self_signed()
        options["verify_tls"] = False
    return Venue(name="ibkr", app=wrapped, engine=engine, control=control, base_path=BASE_PATH,
                 credentials={}, options=options, ssl_certfile=certfile, ssl_keyfile=keyfile)
