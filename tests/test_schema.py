"""The SDL contract and the operation documents of queries/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import parse, validate

from gateway.graphql.schema import build_schema
from tests.harness import QUERIES

ROOT = Path(__file__).resolve().parent.parent


def test_export_schema_matches_committed_sdl() -> None:
    exported = subprocess.run([sys.executable, "-m", "gateway.cli", "export-schema"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    committed = (ROOT / "schema" / "schema.graphql").read_text()
    assert exported == committed, "schema/schema.graphql is stale: run `broker-gateway export-schema > schema/schema.graphql`"


@pytest.mark.parametrize("path", sorted(QUERIES.glob("*.graphql")), ids=lambda p: p.stem)
def test_operation_document_validates_against_schema(path: Path) -> None:
    schema = build_schema()._schema
    errors = validate(schema, parse(path.read_text()))
    assert errors == [], [e.message for e in errors]


def test_contract_names_of_schema_md_are_present() -> None:
    sdl = build_schema().as_str()
    for name in ("interface Node", "type BrokerConnection implements Node", "type Account implements Node",
                 "type AllocationGroup implements Node", "type Order implements Node", "type Position implements Node",
                 "union PlaceOrderResult", "union CancelOrderResult", "union ModifyOrderResult",
                 "union ConvertPositionResult", "interface UserError", "type OrderStatusEvent",
                 "orderStatusChanged(", "placeOrder(", "confirmOrder(", "cancelOrder(", "modifyOrder(",
                 "squareOffPosition(", "convertPosition(", "scalar Decimal", "enum ErrorCode"):
        assert name in sdl, name


def test_every_type_and_field_has_a_description() -> None:
    from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

    schema = build_schema()._schema
    missing = []
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name in ("String", "Boolean", "Int", "Float", "ID", "DateTime"):
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            missing.extend(f"{name}.{f}" for f, field in type_.fields.items() if not field.description)
        if isinstance(type_, GraphQLEnumType):
            missing.extend(f"{name}.{v}" for v, value in type_.values.items() if not value.description)
    assert missing == []
