"""The one place the domains are merged into Query / Mutation / Subscription, with the security
extensions (depth, alias and token limits; introspection off in production; error codes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
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


class _ParserCache(ParserCache):
    """Strawberry's parser cache, except that a document that does not parse is left to Strawberry's
    own parse step, whose error every extension sees (and ``ErrorCodes`` gives a code)."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None and isinstance(ctx.query, str):  # not filled in by persisted operations
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield


class _ValidationCache(ValidationCache):
    """Strawberry's validation cache, except that errors found before validation (a persisted
    operation refused) are kept, as Strawberry's own validation step keeps them."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.pre_execution_errors is None and ctx.graphql_document is not None:
            ctx.pre_execution_errors = self.cached_validate_document(ctx.schema._schema, ctx.graphql_document,
                                                                     ctx.validation_rules)
        yield


def build_schema(limits: LimitsConfig | None = None, *, introspection: bool = True,
                 extensions_first: Sequence[object] = ()) -> strawberry.Schema:
    """The schema with the security extensions configured from ``limits``; ``extensions_first`` run
    before them (persisted operations fill in the document, tracing opens the operation's span)."""
    limits = limits or LimitsConfig()
    # the limiters' validation rules are classes made when a limiter is built: build them once, so that
    # every request validates with the same rules and the validation cache (keyed on them) hits
    depth_rules = QueryDepthLimiter(max_depth=limits.max_depth).validation_rules
    alias_rules = MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules
    extensions: list[object] = [
        *extensions_first,
        lambda: AddValidationRules(depth_rules),
        lambda: AddValidationRules(alias_rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        ErrorCodes,
        # a frontend sends the same few documents: parse and validate each once (bounded caches)
        lambda: _ParserCache(maxsize=256),
        lambda: _ValidationCache(maxsize=256),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return GatewaySchema(query=Query, mutation=Mutation, subscription=Subscription,
                             types=[BrokerConnection, Account, AllocationGroup, Order, Position],
                             extensions=extensions, config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR}))  # type: ignore[arg-type]
