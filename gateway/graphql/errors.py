"""Errors at the GraphQL boundary.

* Mutations: raised domain errors become members of the mutation's result union (``UserError``
  implementations) through :func:`to_user_error`.
* Queries: a ``GatewayError`` becomes an ``errors[]`` entry whose ``extensions`` carry ``code`` and
  ``connection``; partial failures of one connection are reported through ``Context.report`` while
  the other connections still answer (:class:`ErrorCodes` appends them).
* Anything unexpected is logged and masked as ``INTERNAL``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from ..brokers import budget
from ..domain import errors as e

__all__ = ["ErrorCodes", "extension_code", "to_graphql_error"]

log = logging.getLogger(__name__)

#: domain error class → ``extensions.code`` of a query error (SCHEMA.md)
_QUERY_CODES: list[tuple[type[e.GatewayError], str]] = [
    (e.InvalidInput, "BAD_USER_INPUT"),
    (e.RateLimitExceeded, "RATE_LIMITED"),
    (e.BrokerBusy, "BROKER_BUSY"),
    (e.OperationFailed, "BROKER_UNAVAILABLE"),
    (e.AuthenticationError, "UNAUTHENTICATED"),
    (e.PermissionDenied, "FORBIDDEN"),
    (e.OrderNotFound, "NOT_FOUND"),
    (e.NotSupported, "NOT_SUPPORTED"),
    (e.BrokerError, "BROKER_ERROR"),
    (e.GatewayError, "INTERNAL"),
]


def extension_code(error: e.GatewayError) -> str:
    for cls, code in _QUERY_CODES:
        if isinstance(error, cls):
            return code
    return "INTERNAL"  # pragma: no cover


def _extensions(error: e.GatewayError) -> dict[str, Any]:
    ext: dict[str, Any] = {"code": extension_code(error)}
    if error.connection:
        ext["connection"] = error.connection
    if isinstance(error, e.InvalidInput) and error.field:
        ext["field"] = error.field
    if isinstance(error, e.RateLimitExceeded | e.BrokerBusy | e.CircuitOpen) and error.retry_after is not None:
        ext["retryAfter"] = math.ceil(error.retry_after)
    if error.broker_code:
        ext["brokerCode"] = error.broker_code
    if isinstance(error, e.InternalError) and error.request_id:
        ext["requestId"] = error.request_id
    return ext


def to_graphql_error(error: e.GatewayError, path: list[str | int] | None) -> GraphQLError:
    return GraphQLError(error.message, path=path, original_error=error, extensions=_extensions(error))


_TOO_COMPLEX = ("exceeds maximum operation depth", "aliases found. Allowed", "Document contains more than")


class ErrorCodes(SchemaExtension):
    """Opens each operation's scope (fresh loaders, deadline and caller, see ``Context``), runs a
    mutation's upstream calls at write priority and on fresh reads, gives every error an
    ``extensions.code``, appends the operation's partial errors, masks the unexpected ones."""

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_type is not OperationType.MUTATION:
            yield
            return
        with budget.writing(), budget.fresh():
            yield

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        token = context.begin_operation() if hasattr(context, "begin_operation") else None
        try:
            yield
            extra = list(context.errors) if token is not None else []
        finally:
            if token is not None:
                context.end_operation(token)
        result = self.execution_context.result
        if result is None or not hasattr(result, "errors"):
            return
        if extra:
            result.errors = [*(result.errors or []), *extra]
        if result.errors:
            result.errors = [self._coded(err) for err in result.errors]

    @staticmethod
    def _coded(err: GraphQLError) -> GraphQLError:
        if err.extensions and "code" in err.extensions:
            return err
        original = err.original_error
        if isinstance(original, e.GatewayError):
            return to_graphql_error(original, err.path)  # type: ignore[arg-type]
        if original is None or isinstance(original, GraphQLError):
            code = "QUERY_TOO_COMPLEX" if any(t in err.message for t in _TOO_COMPLEX) else "BAD_USER_INPUT"
            return GraphQLError(err.message, nodes=err.nodes, path=err.path, original_error=original,
                                extensions={**(err.extensions or {}), "code": code})
        if isinstance(original, ValueError) and not err.path:  # a scalar's parsing, before execution
            return GraphQLError(err.message, nodes=err.nodes, path=err.path,
                                extensions={"code": "BAD_USER_INPUT"})
        log.error("unexpected error at %s", err.path, exc_info=original)
        return GraphQLError("Internal error", nodes=err.nodes, path=err.path, extensions={"code": "INTERNAL"})
