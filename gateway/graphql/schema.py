"""The one place the domains are merged into Query / Mutation / Subscription, with the security
extensions (depth, alias and token limits; introspection off in production; error codes)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
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
from strawberry.schema.schema import validate_document

from ..config import LimitsConfig
from .account.types import Account
from .allocation_group.types import AllocationGroup
from .connection.types import BrokerConnection
from .cost import cost_limit
from .datetimes import DATETIME_SCALAR
from .document_memo import DocumentMemo
from .errors import ErrorCodes, MaskedErrorCodes
from .input_limits import document_limit, input_limits
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
    """Every error answered gets a code (and, masked, no suggestion) on every transport; unexpected
    errors are logged once, by ``ErrorCodes``, with the request id (not again by strawberry)."""

    mask_suggestions = False

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return  # ErrorCodes logs the unexpected ones; bad input and broker refusals are the caller's answer

    async def stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Strawberry's stream (SSE, WebSocket) with each result's errors coded as ``ErrorCodes`` does
        for ``execute`` (there the operation's extensions finish only after the results are sent)."""
        return self._coded(await super().stream(*args, **kwargs))

    async def _coded(self, source: Any) -> AsyncIterator[Any]:
        try:
            async for result in source:
                if getattr(result, "errors", None):
                    result.errors = [ErrorCodes.finish(err, masked=self.mask_suggestions) for err in result.errors]
                yield result
        finally:
            await source.aclose()


class _ParserCache(ParserCache):
    """Strawberry's parser cache, except that a document that does not parse is left to Strawberry's
    own parse step, whose error every extension sees (and ``ErrorCodes`` gives a code)."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None and isinstance(ctx.query, str):  # not filled in by persisted operations
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield


class _DepthLimiter(QueryDepthLimiter):
    """Strawberry's depth limiter, except that a document spreading an undefined fragment (``{ ...Unknown }``)
    is left to graphql-core's "Unknown fragment" validation error instead of crashing the rule."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(max_depth=max_depth)
        rule = self.validation_rules[0]

        class Tolerant(rule):  # type: ignore[valid-type, misc]
            def __init__(self, context: Any) -> None:
                try:
                    super().__init__(context)
                except KeyError:  # an undefined fragment: NoUndefinedFragmentsRule reports it
                    ASTValidationRule.__init__(self, context)

        self.validation_rules = [Tolerant]


_VALIDATED: DocumentMemo[list[GraphQLError]] = DocumentMemo(maxsize=256)


class _ValidationCache(ValidationCache):
    """Strawberry's validation cache, except that errors found before validation (a persisted
    operation refused) are kept, as Strawberry's own validation step keeps them, and that results
    are kept per document object (:class:`.document_memo.DocumentMemo`: the parser cache hands the
    same text the same document), not per document value, whose hash walks the whole AST."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.pre_execution_errors is None and ctx.graphql_document is not None:
            schema, document, rules = ctx.schema._schema, ctx.graphql_document, tuple(ctx.validation_rules)
            ctx.pre_execution_errors = _VALIDATED.get(document, (schema, rules),
                                                      lambda: validate_document(schema, document, rules))
        yield


def build_schema(limits: LimitsConfig | None = None, *, introspection: bool = True,
                 extensions_first: Sequence[object] = (), mask_errors: bool | None = None) -> strawberry.Schema:
    """The schema with the security extensions configured from ``limits``; ``extensions_first`` run
    before them (persisted operations fill in the document, tracing opens the operation's span).
    ``mask_errors`` (default: when introspection is off, i.e. in production): no "Did you mean ...?"
    suggestions in error messages."""
    limits = limits or LimitsConfig()
    masked = not introspection if mask_errors is None else mask_errors
    # the limiters' validation rules are classes made when a limiter is built: build them once, so that
    # every request validates with the same rules and the validation cache (keyed on them) hits
    depth_rules = _DepthLimiter(max_depth=limits.max_depth).validation_rules
    alias_rules = MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules
    extensions: list[object] = [
        *extensions_first,
        lambda: AddValidationRules(depth_rules),
        lambda: AddValidationRules(alias_rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        MaskedErrorCodes if masked else ErrorCodes,
        document_limit(limits),  # before the lexer reads a long document
        # a frontend sends the same few documents: parse and validate each once (bounded caches)
        lambda: _ParserCache(maxsize=256),
        lambda: _ValidationCache(maxsize=256),
        input_limits(limits),  # after validation, before execution: sizes of variables and literals
        cost_limit(limits),  # ... and the estimated upstream cost
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = GatewaySchema(query=Query, mutation=Mutation, subscription=Subscription,
                             types=[BrokerConnection, Account, AllocationGroup, Order, Position],
                             extensions=extensions,  # type: ignore[arg-type]
                             config=StrawberryConfig(scalar_map={Decimal: DECIMAL_SCALAR, datetime: DATETIME_SCALAR}))
    schema.mask_suggestions = masked
    return schema
