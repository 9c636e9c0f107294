"""Cost analysis: an operation's upstream requests, estimated from its selection before execution.

The estimate walks the validated document (fragments and inline fragments included) and adds, for
every connection the caller may use, that connection's **weight** for each broker request a field
needs, multiplied by how many times the field runs:

==============================================  ===================================================
field                                           estimated requests (``w``: the connection's weight)
==============================================  ===================================================
``Query.connections``                           the children, once per connection
``Query.accounts`` / ``BrokerConnection.accounts``  ``w`` + the children × the connection's accounts
``Query.allocationGroups`` / ``…allocationGroups``  ``w`` + the children × its allocation groups
``Query.orders`` / ``Query.positions``          ``w`` × (1 + accounts) per connection + the page
``Account.orders`` / ``.positions``,            ``w`` + the page
``AllocationGroup.orders``
a page (``edges`` / ``nodes``)                  the children × ``first`` (default 50)
``AllocationGroup.members``                     the children × the connection's accounts
``BrokerConnection.status``                     ``w``
``node`` / ``account`` / ``order`` (by id)      ``w`` (the heaviest connection's) + the children
a mutation field                                2 × ``w`` + the children (the write and its look-up)
a subscription field                            ``w`` + the children
anything else (``Order.account``, ``Money``…)   the children (served from the request's loaders)
==============================================  ===================================================

The numbers of accounts and allocation groups are assumptions per connection (before execution
nothing has been read): ``cost_accounts`` / ``cost_groups`` in ``[connections.NAME]``, else the
broker's default in :data:`BROKER_DEFAULTS` (an IBKR Financial Advisor book has tens of accounts; a
lemon login a few). ``cost_weight`` likewise (IBKR 2: its order and portfolio endpoints are paced).

An operation whose estimate exceeds ``limits.max_cost`` is refused before execution, with no broker
request: ``extensions`` ``{"code": "QUERY_TOO_COMPLEX", "cost": <estimate>, "maxCost": <budget>}``.
The estimate is an upper bound in spirit: requests that the loaders share within one operation
(the same read twice) are counted each time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension

from ..config import ConnectionConfig, GatewayConfig, LimitsConfig
from .document_memo import DocumentMemo

__all__ = ["BROKER_DEFAULTS", "ConnectionCost", "connection_costs", "cost_limit", "estimate"]


@dataclass(frozen=True, slots=True)
class ConnectionCost:
    """One connection's figures for the estimate: ``weight`` per broker request, assumed ``accounts``
    and allocation ``groups``."""

    weight: float
    accounts: int
    groups: int


#: broker → (weight, accounts, allocation groups) when the connection does not set its own
BROKER_DEFAULTS: dict[str, ConnectionCost] = {
    "lemon": ConnectionCost(1.0, 2, 0),
    "ibkr": ConnectionCost(2.0, 25, 5),
    "etna": ConnectionCost(1.0, 5, 0),
    "aliceblue": ConnectionCost(1.0, 1, 0),
}

DEFAULT_FIRST = 50  # a page's size when ``first`` is not given (gateway/graphql/common.py ``window``)
_BY_ID = {"node", "account", "order"}
_CACHED = {"account", "allocationGroup", "connection"}  # served from the operation's loaders


def _figures(conn: ConnectionConfig) -> ConnectionCost:
    default = BROKER_DEFAULTS.get(conn.broker, ConnectionCost(1.0, 5, 0))
    return ConnectionCost(conn.cost_weight if conn.cost_weight is not None else default.weight,
                          conn.cost_accounts if conn.cost_accounts is not None else default.accounts,
                          conn.cost_groups if conn.cost_groups is not None else default.groups)


def connection_costs(config: GatewayConfig, names: frozenset[str] | None = None) -> list[ConnectionCost]:
    """The figures of the connections ``names`` (default: all) of ``config``."""
    return [_figures(conn) for name, conn in sorted(config.connections.items()) if names is None or name in names]


class _Estimator:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: Mapping[str, Any], defaults: Mapping[str, Any], connections: list[ConnectionCost]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.connections = connections or [ConnectionCost(1.0, 1, 0)]
        self.heaviest = max(self.connections, key=lambda c: (c.weight, c.accounts))

    def fields(self, selection_set: SelectionSetNode | None, parent: Any) -> Iterator[tuple[FieldNode, Any]]:
        """``(field, parent type)`` for each field of the selection, fragments flattened."""
        if selection_set is None:
            return
        stack: list[tuple[SelectionSetNode, Any, frozenset[str]]] = [(selection_set, parent, frozenset())]
        while stack:
            selections, owner, seen = stack.pop()
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    yield selection, owner
                elif isinstance(selection, InlineFragmentNode):
                    kind = (self.schema.get_type(selection.type_condition.name.value)
                            if selection.type_condition else owner)
                    stack.append((selection.selection_set, kind, seen))
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in seen:
                        stack.append((fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value),
                                      seen | {name}))

    def first(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(0, int(value.value))
            if isinstance(value, VariableNode):
                name = value.name.value
                given = self.variables.get(name, self.defaults.get(name))
                return max(0, given) if isinstance(given, int) and not isinstance(given, bool) else DEFAULT_FIRST
        return DEFAULT_FIRST

    def selection(self, selection_set: SelectionSetNode | None, parent: Any, conn: ConnectionCost,
                  items: int = 1) -> float:
        total = 0.0
        for field, owner in self.fields(selection_set, parent):
            total += self.field(field, owner, conn, items)
        return total

    def field(self, field: FieldNode, owner: Any, conn: ConnectionCost, items: int) -> float:
        name = field.name.value
        if name.startswith("__") or not isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
            return 0.0
        definition = owner.fields.get(name)
        if definition is None:
            return 0.0
        kind = get_named_type(definition.type)
        parent = owner.name
        sub = field.selection_set

        def children(c: ConnectionCost, n: int = 1) -> float:
            return self.selection(sub, kind, c, n) if sub is not None else 0.0

        if parent == "Query":
            if name == "connections":
                return sum(children(c) for c in self.connections)
            if name == "accounts":
                return sum(c.weight + c.accounts * children(c) for c in self.connections)
            if name == "allocationGroups":
                return sum(c.weight + c.groups * children(c) for c in self.connections)
            if name in ("orders", "positions"):
                first = self.first(field)
                return sum(c.weight * (1 + c.accounts) + children(c, first) for c in self.connections)
            if name in _BY_ID:
                return self.heaviest.weight + children(self.heaviest)
        if parent == "Mutation":
            return 2 * self.heaviest.weight + children(self.heaviest)
        if parent == "Subscription":
            return self.heaviest.weight + children(self.heaviest)
        if name in ("edges", "nodes") and parent.endswith("Connection"):
            return items * children(conn)
        if name == "accounts" and parent == "BrokerConnection":
            return conn.weight + conn.accounts * children(conn)
        if name == "allocationGroups":  # BrokerConnection, Account
            return conn.weight + conn.groups * children(conn)
        if name in ("orders", "positions"):  # Account, AllocationGroup
            return conn.weight + children(conn, self.first(field))
        if name == "members":
            return conn.accounts * children(conn)
        if name == "status" and parent == "BrokerConnection":
            return conn.weight
        return children(conn)  # plain values and the loaders' cached look-ups (``_CACHED``)


def estimate(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
             variables: Mapping[str, Any] | None, connections: list[ConnectionCost]) -> float:
    """The estimated upstream cost of the operation ``operation_name`` of the (validated) ``document``
    for a caller with ``connections``; 0 when the operation is not found."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1 and operation_name is None:
        return 0.0
    if not chosen:
        return 0.0
    operation = chosen[0]
    root = {OperationType.QUERY: schema.query_type, OperationType.MUTATION: schema.mutation_type,
            OperationType.SUBSCRIPTION: schema.subscription_type}[operation.operation]
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
    estimator = _Estimator(schema, fragments, variables or {}, defaults, connections)
    return estimator.selection(operation.selection_set, root, estimator.heaviest)


def _scalars(variables: Mapping[str, Any] | None) -> tuple[tuple[str, type, Any], ...] | None:
    """``variables`` as a hashable key when every value is a scalar (``type`` included, so that
    ``1``, ``1.0`` and ``True`` stay apart), else ``None``."""
    if not variables:
        return ()
    out = []
    for name, value in variables.items():
        if value is not None and type(value) not in (str, int, float, bool):
            return None
        out.append((name, type(value), value))
    return tuple(sorted(out, key=lambda item: item[0]))


def cost_limit(limits: LimitsConfig) -> type[SchemaExtension]:
    """The extension refusing operations over ``limits.max_cost`` (see the module docstring). Listed
    after the validation cache: it estimates validated documents only."""

    estimates: DocumentMemo[float] = DocumentMemo(maxsize=256)

    class CostLimit(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            self._check()
            yield

        def _check(self) -> None:
            ctx = self.execution_context
            if ctx.pre_execution_errors or ctx.graphql_document is None:
                return
            context = ctx.context
            registry = getattr(context, "registry", None)
            principal = getattr(context, "principal", None)
            if registry is None or principal is None:
                return
            names = frozenset(principal.connections)
            schema, document, variables = ctx.schema._schema, ctx.graphql_document, ctx.variables
            costs = connection_costs(registry.config, names)
            args = _scalars(variables)
            if args is None:  # variables holding lists or objects (an order's input): not a cache key
                cost = estimate(schema, document, ctx.operation_name, variables, costs)
            else:  # the estimate depends on nothing else: kept per document object
                cost = estimates.get(document, (schema, ctx.operation_name, args, tuple(costs)),
                                     lambda: estimate(schema, document, ctx.operation_name, variables, costs))
            if cost > limits.max_cost:
                ctx.pre_execution_errors = [GraphQLError(
                    f"the operation's estimated upstream cost {math.ceil(cost)} exceeds the budget of "
                    f"{limits.max_cost:g} (limits.max_cost); ask for fewer items, fewer aliases or fewer nested lists",
                    extensions={"code": "QUERY_TOO_COMPLEX", "cost": math.ceil(cost), "maxCost": limits.max_cost})]

    return CostLimit
