"""Masked errors and malformed input over real HTTP and WebSocket: production answers carry no
suggestions, exception text or tracebacks; a wrong endpoint or method, and every malformed request, is a
4xx or a typed GraphQL error with ``extensions.code`` as JSON, never a 5xx or ``INTERNAL``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import RunningGateway, running_gateway

AUTH = {"Authorization": f"Bearer {MAIN_KEY}"}
SUBSCRIPTION = "subscription { orderStatusChanged { eventId } }"
QUERY = "{ connections { name } }"
ORDER_IDS = "{ edges { node { id } } }"

#: seven misspellings: a field, a mutation, an argument, a type, an enum value (literal and variable), an input field
MISSPELLINGS: list[tuple[str, dict[str, Any] | None, str]] = [
    ("{ conections { name } }", None, "connections"),
    ("mutation { placeOrdr { __typename } }", None, "placeOrder"),
    (f"{{ orders(frist: 1) {ORDER_IDS} }}", None, "first"),
    (f"query Q($f: OrderFiltr) {{ orders(filter: $f) {ORDER_IDS} }}", None, "OrderFilter"),
    (f"{{ orders(filter: {{status: [FILED]}}) {ORDER_IDS} }}", None, "FILLED"),
    (f"query Q($s: [OrderStatus!]) {{ orders(filter: {{status: $s}}) {ORDER_IDS} }}", {"s": ["FILED"]}, "FILLED"),
    (f"query Q($f: OrderFilter) {{ orders(filter: $f) {ORDER_IDS} }}", {"f": {"stauts": ["FILLED"]}}, "status"),
]


@pytest.fixture(scope="module")
async def production(lemon_url: str) -> AsyncIterator[RunningGateway]:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile="production")) as gateway:
        yield gateway


@pytest.fixture
def gateway_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of the process, uvicorn's included (its loggers do not propagate to the root)."""
    caplog.set_level(logging.INFO)
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        uvicorn_logger.removeHandler(caplog.handler)


def _assert_typed(response: httpx.Response) -> dict[str, Any]:
    """A 4xx (or 200 with errors) whose JSON errors all carry a code, none ``INTERNAL``."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert body["errors"], body
    codes = [e.get("extensions", {}).get("code") for e in body["errors"]]
    assert all(codes) and "INTERNAL" not in codes, body
    return body


def _no_tracebacks(logs: pytest.LogCaptureFixture) -> None:
    assert not [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR], \
        [(r.name, r.getMessage()) for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in logs.text


@pytest.mark.parametrize("profile", ["development", "production"])
async def test_production_answers_to_misspellings_carry_no_suggestion(lemon_url: str, profile: str) -> None:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile=profile)) as gateway:
        client = gateway.client(MAIN_KEY)
        messages = []
        for document, variables, right in MISSPELLINGS:
            body = _assert_typed(await client.post(document, variables))
            assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
            message = body["errors"][0]["message"]
            messages.append((message, right))
    if profile == "development":  # the same documents do draw suggestions where introspection is on
        assert all("Did you mean" in m and f"'{right}'" in m for m, right in messages), messages
    else:
        assert not [m for m, right in messages if "Did you mean" in m or f"'{right}'" in m], messages


async def test_production_subscription_errors_carry_no_suggestion(production: RunningGateway) -> None:
    misspelled = "subscription { orderStatusChangd { eventId } }"
    async with httpx.AsyncClient(timeout=10) as http:
        sse = await http.post(production.url + "/stream", json={"query": misspelled}, headers=AUTH)
    assert "Did you mean" not in sse.text and "orderStatusChanged" not in sse.text, sse.text
    async with websockets.connect(production.url.replace("http", "ws"), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": AUTH}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": misspelled}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT", message
    assert "Did you mean" not in message["payload"][0]["message"], message


async def test_wrong_endpoint_or_method_is_a_4xx_with_one_line_and_no_traceback(
        production: RunningGateway, gateway_logs: pytest.LogCaptureFixture) -> None:
    url = production.url
    csrf = {**AUTH, "x-graphql-csrf": "1"}
    mutation = 'mutation { cancelOrder(input: {orderId: "x"}) { __typename } }'
    async with httpx.AsyncClient(timeout=10) as http:
        cases = {
            "subscription POSTed to /graphql": (await http.post(url, json={"query": SUBSCRIPTION}, headers=AUTH), 400),
            "query to /graphql/stream": (await http.post(url + "/stream", json={"query": QUERY}, headers=AUTH), 400),
            "mutation to /graphql/stream": (await http.post(url + "/stream", json={"query": mutation}, headers=AUTH), 400),
            "GET mutation on /graphql/stream": (await http.get(url + "/stream", params={"query": mutation},
                                                               headers=csrf), 405),
            "GET mutation on /graphql": (await http.get(url, params={"query": mutation}, headers=csrf), 405),
            "PUT /graphql": (await http.put(url, json={"query": QUERY}, headers=AUTH), 405),
            "DELETE /graphql/stream": (await http.delete(url + "/stream", headers=AUTH), 405),
            "PATCH /graphql": (await http.patch(url, json={"query": QUERY}, headers=AUTH), 405),
            "unknown path": (await http.get(url.replace("/graphql", "/graphq"), headers=AUTH), 404),
        }
    for name, (response, status) in cases.items():
        assert response.status_code == status, (name, response.status_code, response.text)
        body = _assert_typed(response)
        message = body["errors"][0]["message"]
        assert "\n" not in message and len(message) < 200, (name, message)
    hint = cases["subscription POSTed to /graphql"][0].json()["errors"][0]["message"]
    assert hint == "subscriptions are served over WebSocket at /graphql or SSE at /graphql/stream"
    assert "POST /graphql" in cases["query to /graphql/stream"][0].json()["errors"][0]["message"]
    _no_tracebacks(gateway_logs)


async def test_malformed_http_input_is_a_typed_4xx(production: RunningGateway,
                                                   gateway_logs: pytest.LogCaptureFixture) -> None:
    url, stream = production.url, production.url + "/stream"
    json_ct = {**AUTH, "Content-Type": "application/json"}
    csrf = {**AUTH, "x-graphql-csrf": "1"}
    async with httpx.AsyncClient(timeout=10) as http:
        non_utf8 = [("Content-Type", "application/json"), ("X-Client", b"caf\xe9\xff")]
        responses = {
            "non-UTF-8 header, no key": await http.post(url, content=json.dumps({"query": QUERY}), headers=non_utf8),
            "non-UTF-8 Authorization": await http.post(url, content=json.dumps({"query": QUERY}),
                                                       headers=[*non_utf8, ("Authorization", b"Bearer \xff\xfe")]),
            "body 1": await http.post(url, content=b"1", headers=json_ct),
            "body null": await http.post(url, content=b"null", headers=json_ct),
            "body []": await http.post(url, content=b"[]", headers=json_ct),
            "body invalid UTF-8": await http.post(url, content=b'{"query": "{ conn\xff }"}', headers=json_ct),
            "body not JSON": await http.post(url, content=b'{"query": ', headers=json_ct),
            "query not a string": await http.post(url, json={"query": 1}, headers=AUTH),
            "variables a list": await http.post(url, json={"query": QUERY, "variables": [1]}, headers=AUTH),
            "[] to the stream": await http.post(stream, content=b"[]", headers=json_ct),
            "1 to the stream": await http.post(stream, content=b"1", headers=json_ct),
            "invalid UTF-8 to the stream": await http.post(stream, content=b'{"query": "\xff"}', headers=json_ct),
            "SSE GET, variables not JSON": await http.get(stream, params={"query": SUBSCRIPTION, "variables": "{x"},
                                                          headers=csrf),
            "SSE GET, variables a list": await http.get(stream, params={"query": SUBSCRIPTION, "variables": "[1]"},
                                                        headers=csrf),
            "GET, variables not JSON": await http.get(url, params={"query": QUERY, "variables": "{x"}, headers=csrf),
            "two Authorization headers": await http.post(url, json={"query": QUERY},
                                                         headers=[("Authorization", f"Bearer {MAIN_KEY}"),
                                                                  ("Authorization", "Bearer other")]),
            "undefined fragment": await http.post(url, json={"query": "{ ...Unknown }"}, headers=AUTH),
            "createdAfter without offset": await http.post(url, json={
                "query": f'{{ orders(first: 1, filter: {{createdAfter: "2024-01-01T00:00:00"}}) {ORDER_IDS} }}'},
                headers=AUTH),
            "createdAfter variable without offset": await http.post(url, json={
                "query": f"query Q($f: OrderFilter) {{ orders(first: 1, filter: $f) {ORDER_IDS} }}",
                "variables": {"f": {"createdAfter": "2024-01-01T00:00:00"}}}, headers=AUTH),
        }
    for name, response in responses.items():
        try:
            _assert_typed(response)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert responses["non-UTF-8 header, no key"].status_code == 401  # reached authentication, not a crash
    assert responses["two Authorization headers"].status_code == 400
    assert responses["undefined fragment"].json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for name in ("createdAfter without offset", "createdAfter variable without offset"):
        error = responses[name].json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "offset" in error["message"], (name, error)
    assert all(r.status_code in (200, 400, 401) for r in responses.values())
    _no_tracebacks(gateway_logs)


async def _ws_close(url: str, frames: list[str], headers: list[tuple[str, str]] | None = None) -> tuple[int | None, str]:
    """Sends ``connection_init`` then ``frames``; the close code and reason the gateway answers with."""
    async with websockets.connect(url.replace("http", "ws"), subprotocols=["graphql-transport-ws"],
                                  additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": AUTH}))
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "connection_ack", first
            for frame in frames:
                await ws.send(frame)
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


async def test_malformed_websocket_frames_close_with_4400(production: RunningGateway,
                                                          gateway_logs: pytest.LogCaptureFixture) -> None:
    frames = {
        "a JSON array": "[1, 2]",
        "a JSON number": "1",
        "not JSON": "{",
        "type not a string": json.dumps({"type": ["subscribe"]}),
        "subscribe with a list payload": json.dumps({"id": "1", "type": "subscribe", "payload": [1]}),
        "subscribe with a numeric id": json.dumps({"id": 1, "type": "subscribe", "payload": {"query": SUBSCRIPTION}}),
    }
    for name, frame in frames.items():
        code, reason = await _ws_close(production.url, [frame])
        assert code == 4400, (name, code, reason)
    _no_tracebacks(gateway_logs)


async def test_two_authorization_headers_are_refused_on_a_websocket(production: RunningGateway) -> None:
    headers = [("Authorization", f"Bearer {MAIN_KEY}"), ("Authorization", "Bearer other")]
    async with websockets.connect(production.url.replace("http", "ws"), subprotocols=["graphql-transport-ws"],
                                  additional_headers=headers) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 4400 and "Authorization" in (ws.close_reason or "")


async def test_an_unexpected_exception_is_internal_with_the_request_id_and_logged_once(
        production: RunningGateway, gateway_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> Any:
        raise RuntimeError("boom: GET https://upstream.invalid/v1/secret failed")

    monkeypatch.setattr(production.registry, "get", broken)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(production.url, json={"query": QUERY}, headers={**AUTH, "X-Request-Id": "req-42"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] == "Internal error"
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-42"}
    assert "upstream.invalid" not in response.text and "boom" not in response.text
    logged = [r for r in gateway_logs.records if r.exc_info and "boom" in str(r.exc_info[1])]
    assert len(logged) == 1 and "req-42" in logged[0].getMessage(), [r.getMessage() for r in gateway_logs.records]
