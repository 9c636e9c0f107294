"""The ETNA Trader Web API paper venue (``/api/`` on loopback).

Wire format per ``shared/brokers/etna.md``: ``POST token`` with credentials in headers, then
``Et-App-Key`` + ``Authorization: Bearer`` on every call; accounts, paged and filtered positions
and orders, place / replace / cancel, equities by id. Built on the broker-neutral engine; seeded by
:mod:`.seed`. ETNA-only control routes: ``/__sandbox__/etna/settings`` and ``/__sandbox__/etna/auth``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..control import ControlPlane
from ..engine import Engine, EngineConfig
from ..instruments import CATALOGUE
from ..venue import Venue
from .auth import AuthStore
from .routes import wire_routes
from .seed import APP_KEY, MAIN_USER, seed, synthetic_instruments
from .state import EtnaState
from .wire import error_body, json_response

__all__ = ["create_venue"]


def _error_response(status: int) -> Response:
    return json_response(error_body(status), status)


async def _no_route(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer as ASP.NET Web API does, in ETNA's ``{"Message"}`` JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        message = f"The requested resource does not support http method '{request.method}'."
    else:
        message = f"No HTTP resource was found that matches the request URI '{request.url}'."
    return json_response({"Message": message}, status)


def create_venue(config: EngineConfig | None = None, *, token_lifetime: float = 86_400.0) -> Venue:
    """A seeded ETNA venue; ``token_lifetime`` in seconds (also settable over the control plane)."""
    instruments = tuple(ins for ins in CATALOGUE if "etna" in ins.ids) + synthetic_instruments()
    engine = Engine(instruments, config)
    state = EtnaState(engine, AuthStore(APP_KEY, token_lifetime))
    seed(state)
    control = ControlPlane(engine, _error_response)
    app = Starlette(routes=[*control.routes(), *wire_routes(state)],
                    exception_handlers={404: _no_route, 405: _no_route})
    return Venue(
        name="etna", app=control.middleware(app), engine=engine, control=control, base_path="/api/",
        credentials={"app_key": APP_KEY, "username": MAIN_USER["username"], "password": MAIN_USER["password"]},
        options={"token_lifetime": token_lifetime},
    )
