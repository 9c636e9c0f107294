"""The one place the domains are merged into Query / Mutation / Subscription, with the security
extensions (depth, alias and token limits; introspection off in production; error codes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from ..config import LimitsConfig
from ..domain.errors import GatewayError
from .account.types import Account
from .allocation_group.types import AllocationGroup
from .connection.types import BrokerConnection
from .errors import ErrorCodes
from .order.mutations import OrderMutations
from .order.types import Order
from .position.mutations import PositionMutations
from .position.types import Position
from .queries import Query
from .scalars import DECIMAL_SCALAR, Decimal
from .subscription import Subscription

__all__ = ["Mutation", "build_schema"]


@strawberry.type(description="Place, confirm, modify and cancel orders; square off and convert positions.")
class Mutation(OrderMutations, PositionMutations):
    pass


class GatewaySchema(strawberry.Schema):
    """Logs only unexpected errors: bad input and broker refusals are the caller's answer, not ours."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        unexpected = [e for e in errors if e.original_error is not None
                      and not isinstance(e.original_error, GatewayError | GraphQLError | ValueError)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(limits: LimitsConfig | None = None, *, introspection: bool = True,
                 extensions_first: Sequence[object] = ()) -> strawberry.Schema:
    """The schema with the security extensions configured from ``limits``; ``extensions_first`` run
    before them (persisted operations fill in the document, tracing opens the operation's span)."""
    limits = limits or LimitsConfig()
    extensions: list[object] = [
        *extensions_first,
        lambda: QueryDepthLimiter(max_depth=limits.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        ErrorCodes,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return GatewaySchema(query=Query, mutation=Mutation, subscription=Subscription,
                             types=[BrokerConnection, Account, AllocationGroup, Order, Position],
                             extensions=extensions, config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}))  # type: ignore[arg-type]
