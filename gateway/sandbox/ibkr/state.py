"""Everything one IBKR sandbox venue holds beside the engine, and the JSON helpers its handlers
share."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine import Engine, SimOrder
from ..instruments import SimInstrument
from .pacing import Pacer
from .seed import GROUPS, MASTER, SUB_ACCOUNTS, SimGroup
from .session import Session
from .wire import ib_status

__all__ = ["VenueState", "ib_json", "read_json"]

BASE_PATH = "/v1/api/"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def ib_json(body: Any, status: int = 200) -> Response:
    """A JSON answer the way the CP gateway writes it."""
    return Response(json.dumps(body, default=_default), status_code=status, media_type="application/json")


def ib_error(message: str, status: int = 200, with_code: bool = False) -> Response:
    body: dict[str, Any] = {"error": message}
    if with_code:
        body["statusCode"] = status
    return ib_json(body, status)


async def read_json(request: Request) -> Any:
    """The request body parsed with ``Decimal`` for fractions; ``None`` when empty or not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return None


@dataclass(slots=True)
class VenueState:
    """The venue: engine, the one session, pacing, allocation groups, cOID registry.

    ``no_market_data``: conids the session has no market data for (their orders raise o354).
    """

    engine: Engine
    session: Session = field(default_factory=Session)
    pacer: Pacer = field(default_factory=Pacer)
    groups: dict[str, SimGroup] = field(default_factory=lambda: {g.name: g for g in GROUPS})
    coids: set[str] = field(default_factory=set)
    no_market_data: set[str] = field(default_factory=lambda: {"8314"})
    _ids: Any = field(default_factory=lambda: itertools.count(1_842_337_101))

    @property
    def master(self) -> str:
        return MASTER

    @property
    def sub_accounts(self) -> tuple[str, ...]:
        return SUB_ACCOUNTS

    def next_order_id(self) -> str:
        return str(next(self._ids))

    def by_conid(self, conid: Any) -> SimInstrument | None:
        text = str(conid).split("@", 1)[0]
        for ins in self.engine.instruments.values():
            if ins.ids.get("conid") == text:
                return ins
        return None

    def now(self) -> float:
        return self.engine._now()

    def status_of(self, order: SimOrder) -> str:
        return ib_status(order, self.now(), self.engine.config.ack_delay)

    def visible_to(self, order: SimOrder, account: str) -> bool:
        """Whether ``order`` shows when ``account`` is selected: an account's own orders; the master
        also sees group orders; a selected allocation group its own orders (the FA lesson switches to
        the group to list them); ``All`` every order of the book."""
        return (order.account_id == account or account == "All"
                or (account == MASTER and order.account_id in self.groups))
