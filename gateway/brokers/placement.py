"""One placement protocol for every broker (issue #11): exactly one order per client order id.

Every order write carries a client order id the broker stores (lemon ``idempotency``, IBKR ``cOID``,
ETNA ``ClientId``, Alice Blue ``orderTag``; see ``docs/placement.md``). The adapters send the write
once through :func:`send_once`:

* the write succeeds → its order;
* it fails where the request provably never left (``OperationFailed.sent`` is false: connection
  refused, circuit open, no permit before the deadline) → that error: nothing was placed;
* it fails after the request may have reached the broker (timeout, reset after sending, 5xx, an
  unreadable, non-JSON or truncated answer) → :func:`reconcile`: the order is looked up by its client
  order id, again and again for the broker's visibility delay (bounded by the operation's deadline);
  found → that order, not found → ``OrderOutcomeUnknown`` naming the client order id. Never
  ``BrokerUnavailable``: the order may exist.

:func:`find_placed` is the look-up; the GraphQL layer also uses it before a keyed placement on a
broker that does not refuse a repeated client order id itself (ETNA, Alice Blue), so that a restarted
gateway or another replica never places the same key twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from ..domain.errors import GatewayError, OperationFailed, OrderOutcomeUnknown, RateLimitExceeded
from ..domain.models import Order
from . import budget

__all__ = ["DEFAULT_VISIBILITY", "find_placed", "reconcile", "send_once"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds an order written may take to show in the broker's order list (the adapters override it
#: with the connection option ``visibility_delay``)
DEFAULT_VISIBILITY = 1.0

#: the part of the operation's deadline a reconciliation leaves for answering
_MARGIN = 0.5


@contextlib.contextmanager
def _own_spending() -> Iterator[None]:
    """The look-ups of a reconciliation get the connection's ``timeout`` afresh (the failed write
    and earlier reads may have spent it); the operation's deadline still bounds them."""
    token = budget.spent.set({})
    try:
        yield
    finally:
        budget.spent.reset(token)


async def find_placed(lookup: Callable[[], Awaitable[Order | None]], *, visibility: float = DEFAULT_VISIBILITY,
                      what: str = "order", first_answer: bool = False) -> tuple[Order | None, bool]:
    """Look the order up with ``lookup()`` (fresh reads) until it is found or ``visibility`` seconds
    have passed (never past the operation's deadline less a margin to answer); with ``first_answer``,
    only until one look-up reads the broker's answer (a check before sending, not a wait for an
    order written moments ago). A look-up that fails (any ``GatewayError``) is tried again.

    Returns ``(order, complete)``: the order or ``None``; ``complete`` is whether at least one look-up
    read the broker's whole answer (``False``: every look-up failed, so "not found" means nothing).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + max(visibility, 0.0)
    left = budget.remaining()
    if left is not None:
        end = min(end, loop.time() + left - _MARGIN)
    pause = 0.05
    complete = False
    with _own_spending(), budget.fresh():
        while True:
            try:
                found = await lookup()
                complete = True
                if found is not None or first_answer:
                    return found, True
            except GatewayError as exc:
                log.info("look-up of %s failed: %s", what, exc.message)
            if loop.time() + pause >= end:
                return None, complete
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.4)


async def reconcile(lookup: Callable[[], Awaitable[Order | None]], *, client_order_id: str, connection: str,
                    cause: str, visibility: float = DEFAULT_VISIBILITY) -> Order:
    """The order a write whose outcome is unknown placed: :func:`find_placed`; raises
    ``OrderOutcomeUnknown`` (with the client order id) when it is not found."""
    found, complete = await find_placed(lookup, visibility=visibility, what=client_order_id)
    if found is not None:
        return found
    detail = ("no order with its client order id exists yet" if complete
              else "the order list could not be read to look for it")
    raise OrderOutcomeUnknown(f"{cause}; {detail}: ask again with the same idempotencyKey",
                              client_order_id=client_order_id, connection=connection)


async def send_once(send: Callable[[], Awaitable[T]], lookup: Callable[[], Awaitable[Order | None]], *,
                    client_order_id: str, connection: str, visibility: float = DEFAULT_VISIBILITY) -> T | Order:
    """``send()`` (one order write, never repeated); a failure after the request may have left is
    reconciled by client order id (:func:`reconcile`); one that provably happened before sending is
    raised as it is."""
    try:
        return await send()
    except OrderOutcomeUnknown:
        raise
    except OperationFailed as exc:
        if not exc.sent or isinstance(exc, RateLimitExceeded):
            raise  # never sent, or refused unprocessed (429): nothing was placed
        cause = exc.message
    return await reconcile(lookup, client_order_id=client_order_id, connection=connection, cause=cause,
                           visibility=visibility)
