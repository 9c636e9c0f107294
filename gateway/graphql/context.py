"""The per-request context: principal, registry, loaders and the partial errors of the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from strawberry.types import Info as _Info

from ..auth import Principal
from ..domain.errors import GatewayError
from ..events import Events
from ..idempotency import IdempotencyStore
from ..registry import Registry
from .loaders import Loaders

__all__ = ["Context", "Info"]


@dataclass(slots=True)
class Context:
    """Built per request in ``get_context``; loaders are never shared across requests."""

    principal: Principal
    registry: Registry
    loaders: Loaders
    idempotency: IdempotencyStore
    events: Events
    max_page_size: int = 100
    request: Any = None
    connection_params: dict[str, Any] | None = None  # the WebSocket connection_init payload
    errors: list[GraphQLError] = field(default_factory=list)

    def report(self, error: GatewayError, info: _Info | None = None) -> None:
        """Record a connection's failure as an ``errors[]`` entry while the field answers what it
        has (the other connections' data)."""
        from .errors import to_graphql_error

        path = info.path.as_list() if info is not None else None
        self.errors.append(to_graphql_error(error, path))

    async def published(self, order: Any) -> None:
        """Publish a status change the gateway itself caused (a mutation's result) at once."""
        from ..domain.models import Order

        if isinstance(order, Order):
            try:
                await self.events.watchers.observe(order.account_key, [order])
            except Exception:  # the mutation succeeded; a bus hiccup must not turn it into an error
                import logging

                logging.getLogger(__name__).warning("could not publish the event of %s", order.key, exc_info=True)


Info = _Info[Context, None]
