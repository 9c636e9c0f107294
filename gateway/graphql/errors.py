"""Errors at the GraphQL boundary.

* Mutations: raised domain errors become members of the mutation's result union (``UserError``
  implementations) through :func:`to_user_error`.
* Queries: a ``GatewayError`` becomes an ``errors[]`` entry whose ``extensions`` carry ``code`` and
  ``connection``; partial failures of one connection are reported through ``Context.report`` while
  the other connections still answer (:class:`ErrorCodes` appends them).
* Anything unexpected is logged once and masked as ``INTERNAL`` with the request id
  (``extensions.requestId``, also on the log line).
* In production (:class:`MaskedErrorCodes`) messages carry no "Did you mean ...?" suggestions: with
  introspection off, they would disclose the schema's names.
* An operation of a type the transport does not serve (a query sent to the SSE endpoint) is
  ``BAD_REQUEST`` with where it is served.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from ..brokers import budget
from ..domain import errors as e
from ..request_id import current_request_id

__all__ = ["ErrorCodes", "MaskedErrorCodes", "extension_code", "present", "present_formatted", "strip_suggestions",
           "to_graphql_error"]

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


#: graphql-core's suggestions: "Did you mean 'placeOrder'?", "... the enum value 'LEMON'?", "... 'a' or 'b'?"
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def strip_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean ...?" suggestions."""
    return _SUGGESTION.sub("", message)


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
            result.errors = [self._masked(self._coded(err)) for err in result.errors]

    masked = False

    def _masked(self, err: GraphQLError) -> GraphQLError:
        return self.finish(err, masked=self.masked) if self.masked else err

    @staticmethod
    def finish(err: GraphQLError, *, masked: bool) -> GraphQLError:
        """``err`` with a code, and without suggestions when ``masked``."""
        err = ErrorCodes._coded(err)
        if not masked or "Did you mean" not in err.message:
            return err
        return GraphQLError(strip_suggestions(err.message), nodes=err.nodes, path=err.path,
                            original_error=err.original_error, extensions=err.extensions)

    @staticmethod
    def _coded(err: GraphQLError) -> GraphQLError:
        if err.extensions and "code" in err.extensions:
            return err
        original = err.original_error
        if isinstance(original, MissingQueryError):
            return GraphQLError("no GraphQL query in the request", nodes=err.nodes, path=err.path,
                                extensions={"code": "BAD_REQUEST"})
        if isinstance(original, InvalidOperationTypeError | CannotGetOperationTypeError):
            return GraphQLError(_wrong_transport(original), nodes=err.nodes, path=err.path,
                                extensions={"code": "BAD_REQUEST"})
        if isinstance(original, e.GatewayError):
            return to_graphql_error(original, err.path)  # type: ignore[arg-type]
        if original is None or isinstance(original, GraphQLError):
            code = "QUERY_TOO_COMPLEX" if any(t in err.message for t in _TOO_COMPLEX) else "BAD_USER_INPUT"
            return GraphQLError(err.message, nodes=err.nodes, path=err.path, original_error=original,
                                extensions={**(err.extensions or {}), "code": code})
        if isinstance(original, ValueError) and not err.path:  # a scalar's parsing, before execution
            return GraphQLError(err.message, nodes=err.nodes, path=err.path,
                                extensions={"code": "BAD_USER_INPUT"})
        rid = current_request_id()
        log.error("unexpected error at %s (request %s)", err.path, rid, exc_info=original)
        return GraphQLError("Internal error", nodes=err.nodes, path=err.path,
                            extensions={"code": "INTERNAL", **({"requestId": rid} if rid else {})})


def present(err: GraphQLError, *, masked: bool) -> dict[str, Any]:
    """``err`` as an ``errors[]`` entry with a code, without suggestions when ``masked`` (for transports
    that format a result after the operation's extensions ran: SSE and WebSocket subscriptions)."""
    return dict(ErrorCodes.finish(err, masked=masked).formatted)


def present_formatted(error: Any, *, masked: bool) -> Any:
    """An already formatted ``errors[]`` entry made safe as :func:`present` does; an entry without a
    code at this point is a refusal before execution (``BAD_USER_INPUT``)."""
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return error
    out = dict(error)
    if masked and "Did you mean" in out["message"]:
        out["message"] = strip_suggestions(out["message"])
    extensions = out.get("extensions") or {}
    if "code" not in extensions:
        out["extensions"] = {**extensions, "code": "BAD_USER_INPUT"}
    return out


class MaskedErrorCodes(ErrorCodes):
    """:class:`ErrorCodes` for production: no suggestions in messages."""

    masked = True


def _wrong_transport(error: Exception) -> str:
    if isinstance(error, InvalidOperationTypeError):
        if error.operation_type.value == "subscription":
            return "subscriptions are served over WebSocket at /graphql or SSE at /graphql/stream"
        return f"{error.operation_type.value} operations are served at POST /graphql"
    return "the operation to run cannot be determined: name one with operationName"
