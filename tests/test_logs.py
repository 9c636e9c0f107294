"""Logging as ``broker-gateway`` sets it up: JSON lines carrying the request id that the response
echoes in ``X-Request-Id``; ``--log-level`` honoured by every logger, uvicorn's included."""

from __future__ import annotations

import io
import json
import logging

import httpx

from gateway.logs import configure_logging
from gateway.request_id import request_id
from tests.harness import document, eventually, served_process

#: what serve prints itself (not log records)
_ECHO = ("sandbox venue ", "GraphiQL: ", "GraphQL endpoint: ")


async def _dashboard(url: str, rid: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"query": document("Positions"), "variables": {"first": 1}},
                                   headers={"X-Request-Id": rid})
    assert response.status_code == 200 and response.headers["x-request-id"] == rid
    return response


async def test_json_logs_carry_the_request_id_of_the_request_they_were_logged_for() -> None:
    async with served_process("--venues", "lemon", "--access-log",
                              options=("--log-format", "json", "--log-level", "info")) as (url, lines):
        await _dashboard(url, "json-logs-1")

        async def logged() -> bool:
            return any("json-logs-1" in line for line in lines)

        await eventually(logged, timeout=10)
    records = [json.loads(line) for line in lines if line.strip() and not line.startswith(_ECHO)]
    assert records, lines  # every other line is a JSON record
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= set(record), record
    mine = [r for r in records if r["request_id"] == "json-logs-1"]
    assert mine and any("POST /graphql" in r["message"] for r in mine), mine
    assert any(r["request_id"] is None and r["logger"] == "uvicorn.error" for r in records)  # startup, no request


async def test_log_level_warning_shows_no_info_line() -> None:
    async with served_process("--venues", "lemon", "--access-log", options=("--log-level", "warning")) as (url, lines):
        await _dashboard(url, "quiet-1")
        async with served_process("--venues", "lemon", "--access-log", options=("--log-level", "info")) as (url2, loud):
            await _dashboard(url2, "loud-1")

            async def access_logged() -> bool:
                return any("loud-1" in line for line in loud)

            await eventually(access_logged, timeout=10)  # the same request is logged at info
    assert not [line for line in lines if "INFO" in line], lines
    assert [line for line in loud if " INFO " in line]


def test_records_outside_a_request_have_no_request_id_and_inside_have_it() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("info", "json", buffer)
    try:
        logging.getLogger("gateway.test").info("outside")
        token = request_id.set("inside-1")
        try:
            logging.getLogger("gateway.test").warning("inside")
        finally:
            request_id.reset(token)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    outside, inside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert outside["request_id"] is None and outside["message"] == "outside" and outside["level"] == "INFO"
    assert inside["request_id"] == "inside-1" and inside["logger"] == "gateway.test"
