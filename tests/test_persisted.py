"""Persisted operations: the manifest built from ``queries/``, ``require`` mode (only the manifest's
operations, by hash, over HTTP, WebSocket and SSE), and Automatic Persisted Queries driven by a real
Apollo Client (``tests/js/apq.mjs``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gateway.config import GatewayConfig
from gateway.persisted import PersistedOperations, PersistedQueryError, document_hash
from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import QUERIES, RunningGateway, SandboxControl, running_gateway

JS = Path(__file__).resolve().parent / "js"
UNKNOWN = "query Unknown { connections { name broker } }"


def _hash_only(name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    digest = document_hash((QUERIES / f"{name}.graphql").read_text())
    return {"operationName": name, "variables": variables or {},
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}


async def _post(url: str, body: dict[str, Any], key: str | None = MAIN_KEY) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json=body, headers={"Authorization": f"Bearer {key}"} if key else {})
    assert response.status_code == 200, response.text
    return response.json()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest as the CLI builds it from queries/."""
    out = tmp_path_factory.mktemp("manifest") / "persisted-operations.json"
    import subprocess

    done = subprocess.run([sys.executable, "-m", "gateway.cli", "persisted-manifest", str(QUERIES), "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
async def require_gateway(lemon_url: str, manifest_file: Path) -> AsyncIterator[RunningGateway]:
    base = gateway_config(lemon_connections(lemon_url), profile="production")
    config = GatewayConfig.model_validate({**base.model_dump(), "persisted_operations": "require",
                                           "persisted_manifest": str(manifest_file)})
    async with running_gateway(config) as gateway:
        yield gateway


def test_the_manifest_maps_the_sha256_of_every_queries_document_to_its_text(manifest_file: Path) -> None:
    manifest = json.loads(manifest_file.read_text())
    documents = sorted(QUERIES.glob("*.graphql"))
    assert len(manifest) == len(documents) == 14
    for path in documents:
        text = path.read_text()
        assert manifest[document_hash(text)] == text


async def test_require_mode_runs_every_queries_document_by_hash_only(
        require_gateway: RunningGateway, lemon_control: SandboxControl) -> None:
    url = require_gateway.url
    dashboard = await _post(url, _hash_only("Dashboard"))
    assert not dashboard.get("errors"), dashboard
    account = dashboard["data"]["connections"][0]["accounts"][0]
    assert account["positions"]["totalCount"] > 0
    position = account["positions"]["nodes"][0]["id"]

    placed = await _post(url, _hash_only("PlaceOrder", {"input": {
        "accountId": account["id"], "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "LIMIT",
        "quantity": "1", "limitPrice": "1.00", "timeInForce": "GTC"}}))
    assert placed["data"]["placeOrder"]["__typename"] == "OrderPlaced", placed
    order = placed["data"]["placeOrder"]["order"]["id"]

    runs: dict[str, dict[str, Any]] = {
        "Orders": {"first": 5}, "Positions": {"first": 5}, "AccountOrders": {"id": account["id"], "first": 5},
        "AccountPositions": {"id": account["id"], "first": 5}, "Order": {"id": order}, "Node": {"id": account["id"]},
        "ModifyOrder": {"input": {"orderId": order, "limitPrice": "1.10"}},
        "ConfirmOrder": {"input": {"confirmationId": "no-such-confirmation", "accept": True}},
        "ConvertPosition": {"input": {"positionId": position, "toProduct": "INTRADAY"}},
        "SquareOffPosition": {"input": {"positionId": position, "quantity": "0.0001"}},
        "CancelOrder": {"input": {"orderId": order}},
    }
    for name, variables in runs.items():
        body = await _post(url, _hash_only(name, variables))
        assert not any(str(c).startswith("PERSISTED_QUERY") for c in _codes(body)), (name, body)
        root = next(iter(body["data"] or {}), None)
        assert root is not None and body["data"][root] is not None, (name, body)  # the document ran
    assert (await _post(url, _hash_only("Order", {"id": order})))["data"]["order"]["status"] in (
        "PENDING_CANCEL", "CANCELED")

    # the subscription, by hash only: over the WebSocket and over SSE
    async with websockets.connect(url.replace("http://", "ws://"), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": _hash_only("OrderStatusChanged")}))
        await asyncio.sleep(0.3)  # subscribed before the order exists
        placed = await _post(url, _hash_only("PlaceOrder", {"input": {
            "accountId": account["id"], "instrument": {"isin": "US0378331005"}, "side": "BUY", "type": "MARKET",
            "quantity": "1"}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert message["type"] == "next" and not message["payload"].get("errors"), message
        assert message["payload"]["data"]["orderStatusChanged"]["order"]["id"] == placed["data"]["placeOrder"]["order"]["id"]
    async with httpx.AsyncClient(timeout=15) as http, http.stream(
            "POST", url + "/stream", json={**_hash_only("OrderStatusChanged"), "variables": {"after": "0"}},
            headers={"Authorization": f"Bearer {MAIN_KEY}", "Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                assert not event.get("errors"), event
                assert event["data"]["orderStatusChanged"]["eventId"]
                break


async def test_require_mode_refuses_any_other_document_with_a_typed_error_and_no_upstream_call(
        require_gateway: RunningGateway, lemon_control: SandboxControl) -> None:
    url = require_gateway.url
    before = await lemon_control.total()
    unknown_text = await _post(url, {"query": UNKNOWN})
    unknown_hash = await _post(url, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}})
    register = await _post(url, {"query": UNKNOWN, "extensions": {"persistedQuery": {
        "version": 1, "sha256Hash": document_hash(UNKNOWN)}}})
    after_register = await _post(url, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash(UNKNOWN)}}})
    for body in (unknown_text, unknown_hash, register, after_register):
        assert _codes(body) == ["PERSISTED_QUERY_NOT_IN_LIST"] and body["data"] is None, body
    assert await lemon_control.total() == before  # refused operations never reach the broker
    # a manifest document sent as text is still the allowed operation
    allowed = await _post(url, {"query": (QUERIES / "Positions.graphql").read_text(), "variables": {"first": 1}})
    assert not allowed.get("errors") and allowed["data"]["positions"]["totalCount"] >= 1
    assert await lemon_control.total() > before
    before = await lemon_control.total()
    async with websockets.connect(url.replace("http://", "ws://"), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {MAIN_KEY}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription Other { orderStatusChanged { eventId } }"}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "cd" * 32}}}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert await lemon_control.total() == before


def _apollo(url: str, method: str, document: str, variables: dict[str, Any] | None = None) -> Any:
    async def run() -> dict[str, Any]:
        node = shutil.which("node")
        assert node and (JS / "node_modules" / "@apollo" / "client").is_dir(), "run the tests with `make test`"
        proc = await asyncio.create_subprocess_exec(node, str(JS / "apq.mjs"), url, method, document,
                                                    json.dumps(variables or {}), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    return run()


@pytest.mark.parametrize("method", ["post", "get"])
async def test_apollo_client_registers_an_unknown_document_then_is_served_by_hash(
        gateway: RunningGateway, method: str) -> None:
    document = f"query ConnectionNames{method.upper()} {{ connections {{ name broker }} }}"
    outcome = await _apollo(gateway.url, method, document)
    exchanges = outcome["exchanges"]
    # first client: hash only → not found → hash and document (registers); second client: hash only → served
    assert [(e["sentQuery"], e["codes"]) for e in exchanges] == [
        (False, ["PERSISTED_QUERY_NOT_FOUND"]), (True, []), (False, [])], exchanges
    assert len({e["hash"] for e in exchanges}) == 1 and exchanges[0]["hash"]
    if method == "get":
        assert [e["method"] for e in exchanges] == ["GET", "POST", "GET"]
    names = {c["name"] for r in outcome["results"] for c in r["connections"]}
    assert names == {"lemon", "lemon-large"}


async def test_apq_refuses_a_hash_that_does_not_match_the_document(gateway: RunningGateway) -> None:
    body = await _post(gateway.url, {"query": UNKNOWN, "extensions": {"persistedQuery": {"version": 1,
                                                                                        "sha256Hash": "00" * 32}}})
    assert _codes(body) == ["PERSISTED_QUERY_HASH_MISMATCH"] and body["data"] is None
    unregistered = await _post(gateway.url, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00" * 32}}})
    assert _codes(unregistered) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_keeps_only_documents_that_validate(gateway: RunningGateway) -> None:
    invalid = "query Invalid { connections { noSuchField } }"
    pq = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(invalid)}}
    first = await _post(gateway.url, {"query": invalid, "extensions": pq})
    assert _codes(first) == ["BAD_USER_INPUT"]
    assert _codes(await _post(gateway.url, {"extensions": pq})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_off_mode_says_not_supported_and_apollo_falls_back_to_documents(lemon_url: str) -> None:
    base = gateway_config(lemon_connections(lemon_url))
    config = GatewayConfig.model_validate({**base.model_dump(), "persisted_operations": "off"})
    async with running_gateway(config) as gateway:
        body = await _post(gateway.url, {"extensions": {"persistedQuery": {"version": 1,
                                                                           "sha256Hash": document_hash(UNKNOWN)}}})
        assert _codes(body) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        outcome = await _apollo(gateway.url, "post", "query Names { connections { name } }")
    # each (fresh) client tries the hash once, is told "not supported", and sends documents from then on
    assert [(e["sentQuery"], e["codes"]) for e in outcome["exchanges"]] == [
        (False, ["PERSISTED_QUERY_NOT_SUPPORTED"]), (True, []), (False, ["PERSISTED_QUERY_NOT_SUPPORTED"]), (True, [])]
    assert all(e["hash"] is None for e in outcome["exchanges"][1::2])
    assert all(r["connections"] for r in outcome["results"])


def test_the_apq_cache_keeps_the_most_recently_used_documents() -> None:
    store = PersistedOperations("allow", cache_size=2)
    docs = [f"query Q{i} {{ connections {{ name }} }}" for i in range(3)]
    for doc in docs:
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(doc)}}
        assert store.resolve(doc, extensions) == doc
        store.register(doc, extensions)
    assert store.resolve(None, {"persistedQuery": {"version": 1, "sha256Hash": document_hash(docs[2])}}) == docs[2]
    with pytest.raises(PersistedQueryError) as refused:
        store.resolve(None, {"persistedQuery": {"version": 1, "sha256Hash": document_hash(docs[0])}})
    assert refused.value.code == "PERSISTED_QUERY_NOT_FOUND"


def test_require_mode_needs_a_manifest() -> None:
    with pytest.raises(ValueError, match="persisted_manifest"):
        GatewayConfig.model_validate({"persisted_operations": "require"})
