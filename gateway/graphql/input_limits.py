"""Limits on an operation's input values, checked after validation and before execution.

Every value in ``variables`` and every literal in the document is walked once, without recursion:

* nesting (objects and lists) deeper than ``limits.max_variables_depth``,
* a list with more than ``limits.max_list_length`` items,
* a string longer than ``limits.max_string_length`` characters

refuse the operation with one error, ``extensions.code`` ``BAD_USER_INPUT`` and ``extensions.limit``
naming the setting (``max_variables_depth``, ``max_list_length``, ``max_string_length``); nothing is
executed and no broker is called. The extension must come after the validation cache in the
schema's list (see ``schema.build_schema``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, ListValueNode, ObjectValueNode, StringValueNode, ValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from ..config import LimitsConfig
from .document_memo import DocumentMemo

__all__ = ["InputLimits", "document_limit", "input_limits", "input_problem"]


def input_problem(value: Any, limits: LimitsConfig) -> tuple[str, str] | None:
    """``(setting, message)`` for the first limit ``value`` (decoded JSON) breaks, else ``None``."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_string_length:
                return "max_string_length", f"a string value is longer than {limits.max_string_length} characters"
        elif isinstance(item, dict | list):
            if depth >= limits.max_variables_depth:
                return "max_variables_depth", f"input values are nested deeper than {limits.max_variables_depth} levels"
            if isinstance(item, list):
                if len(item) > limits.max_list_length:
                    return "max_list_length", f"a list has more than {limits.max_list_length} items"
                stack.extend((child, depth + 1) for child in item)
            else:
                stack.extend((child, depth + 1) for child in item.values())
    return None


class _Literals(Visitor):
    """Finds the first literal of the document that breaks a limit."""

    def __init__(self, limits: LimitsConfig) -> None:
        super().__init__()
        self.limits = limits
        self.problem: tuple[str, str, ValueNode] | None = None
        self.depth = 0

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if len(node.value) > self.limits.max_string_length:
            self.problem = ("max_string_length",
                            f"a string value is longer than {self.limits.max_string_length} characters", node)
            return self.BREAK
        return None

    def enter_list_value(self, node: ListValueNode, *_: Any) -> Any:
        if len(node.values) > self.limits.max_list_length:
            self.problem = ("max_list_length", f"a list has more than {self.limits.max_list_length} items", node)
            return self.BREAK
        return self._enter(node)

    def enter_object_value(self, node: ObjectValueNode, *_: Any) -> Any:
        return self._enter(node)

    def _enter(self, node: ValueNode) -> Any:
        self.depth += 1
        if self.depth > self.limits.max_variables_depth:
            self.problem = ("max_variables_depth",
                            f"input values are nested deeper than {self.limits.max_variables_depth} levels", node)
            return self.BREAK
        return None

    def leave_list_value(self, *_: Any) -> None:
        self.depth -= 1

    def leave_object_value(self, *_: Any) -> None:
        self.depth -= 1


def _error(setting: str, message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(f"{message} ({setting})", nodes=nodes,
                        extensions={"code": "BAD_USER_INPUT", "limit": setting})


def input_limits(limits: LimitsConfig) -> type[SchemaExtension]:
    """The extension class for ``limits`` (see the module docstring)."""

    literals_of: DocumentMemo[tuple[str, str, ValueNode] | None] = DocumentMemo(maxsize=256)

    def literal_problem(document: Any) -> tuple[str, str, ValueNode] | None:
        literals = _Literals(limits)
        visit(document, literals)
        return literals.problem

    class InputLimits(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            # before the yield, after the validation cache (listed before this) has validated: the
            # check of the errors that ends the validation step runs before any code after a yield
            self._check()
            yield

        def _check(self) -> None:
            ctx = self.execution_context
            if ctx.pre_execution_errors:  # already refused
                return
            problem = input_problem(ctx.variables or {}, limits)
            if problem is not None:
                ctx.pre_execution_errors = [_error(*problem)]
                return
            if ctx.graphql_document is not None:
                document = ctx.graphql_document  # the literals are the document's: walked once per document
                found = literals_of.get(document, None, lambda: literal_problem(document))
                if found is not None:
                    setting, message, node = found
                    ctx.pre_execution_errors = [_error(setting, message, [node])]

    return InputLimits


def document_limit(limits: LimitsConfig) -> type[SchemaExtension]:
    """The extension refusing, before the lexer reads it, a document longer than
    ``limits.max_document_length`` characters (``QUERY_TOO_COMPLEX``, ``extensions.limit``
    ``max_document_length``): the pure-Python lexer takes about a millisecond per 3 kB. Listed before
    the parser cache."""

    class DocumentLimit(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            query = self.execution_context.query
            if self.execution_context.graphql_document is None and isinstance(query, str) \
                    and len(query) > limits.max_document_length:
                raise GraphQLError(f"the document is longer than {limits.max_document_length} characters "
                                   "(max_document_length)",
                                   extensions={"code": "QUERY_TOO_COMPLEX", "limit": "max_document_length"})
            yield

    return DocumentLimit


InputLimits = input_limits(LimitsConfig())
