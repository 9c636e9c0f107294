"""The context: principal, registry, and per operation the loaders and the partial errors.

Strawberry builds one context per HTTP request but only one per WebSocket connection, which may run
many operations. Loaders and partial errors therefore live in an :class:`OperationScope` held in a
context variable that ``ErrorCodes.on_operation`` opens for every operation: nothing cached by one
operation is seen by the next, whatever the transport.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from strawberry.types import Info as _Info

from ..auth import Principal
from ..brokers import budget
from ..domain.errors import GatewayError
from ..events import Events
from ..idempotency import IdempotencyStore, RedisIdempotencyStore
from ..registry import Registry
from .loaders import Loaders

__all__ = ["Context", "Info", "OperationScope"]


@dataclass(slots=True)
class OperationScope:
    """What belongs to one GraphQL operation: its DataLoaders and its partial errors."""

    loaders: Loaders
    errors: list[GraphQLError] = field(default_factory=list)


_scope: ContextVar[OperationScope | None] = ContextVar("gateway_operation_scope", default=None)


@dataclass(slots=True)
class Context:
    """Built in ``get_context``: who calls and what they may use; see the module docstring."""

    principal: Principal
    registry: Registry
    idempotency: IdempotencyStore | RedisIdempotencyStore
    events: Events
    max_page_size: int = 100
    operation_timeout: float = 30.0
    upstream_per_operation: int = 16
    key_slots: asyncio.Semaphore | None = None  # the API key's share of upstream requests (one per key)
    request: Any = None
    connection_params: dict[str, Any] | None = None  # the WebSocket connection_init payload
    grouped: bool = False  # a subscription group's context: the group's members are counted, not its stream

    def begin_operation(self) -> tuple[Token[Any], ...]:
        """Open a fresh scope for the operation running in the current task: its loaders, its
        deadline (``operation_timeout`` seconds from now, which every upstream wait respects) and
        its caller (for each connection's fair share between API keys)."""
        loop = asyncio.get_running_loop()
        return (_scope.set(OperationScope(Loaders.build(self.registry))),
                budget.deadline.set(loop.time() + self.operation_timeout),
                budget.caller.set(self.principal.name),
                budget.spent.set({}),
                budget.slots.set((asyncio.Semaphore(self.upstream_per_operation),
                                  *((self.key_slots,) if self.key_slots is not None else ()))),
                budget.tasks.set(set()))

    @staticmethod
    def end_operation(tokens: tuple[Token[Any], ...]) -> None:
        scope, deadline, caller, spent, slots, tasks = tokens
        budget.end_tasks(budget.tasks.get())  # whatever still works for this operation stops with it
        budget.tasks.reset(tasks)
        budget.slots.reset(slots)
        budget.spent.reset(spent)
        budget.caller.reset(caller)
        budget.deadline.reset(deadline)
        _scope.reset(scope)

    @property
    def scope(self) -> OperationScope:
        scope = _scope.get()
        if scope is None:  # outside an operation's extension (a subscription's generator body)
            scope = OperationScope(Loaders.build(self.registry))
            _scope.set(scope)
        return scope

    @property
    def loaders(self) -> Loaders:
        return self.scope.loaders

    @property
    def errors(self) -> list[GraphQLError]:
        return self.scope.errors

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
