"""A serving process runs on uvloop and freezes its start-up heap out of the garbage collector's
scans (gateway/heap.py); an app built by a test freezes nothing unless asked."""

from __future__ import annotations

import gc
import re

from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import GraphQLClient, running_gateway, served_process


async def test_an_app_asked_to_settle_freezes_its_start_up_heap_and_still_serves(lemon_url: str) -> None:
    config = gateway_config(lemon_connections(lemon_url))
    async with running_gateway(config):
        assert gc.get_freeze_count() == 0  # the default: nothing frozen
    try:
        async with running_gateway(config, settle_heap=True) as gateway:
            assert gc.get_freeze_count() > 10_000
            body = (await gateway.client(MAIN_KEY).post("{ connections { name accounts { id } } }")).json()
            assert body["data"]["connections"][0]["accounts"], body
    finally:
        gc.unfreeze()


async def test_serve_runs_on_uvloop_and_settles_the_heap_once_started() -> None:
    async with served_process("--venues", "lemon", options=("--log-level", "info")) as (url, lines):
        data = await GraphQLClient(url).data("Dashboard")
        assert data["connections"][0]["accounts"]
        frozen = [int(m.group(1)) for line in lines
                  if (m := re.search(r"start-up heap frozen out of the garbage collector's scans: (\d+) objects", line))]
        assert len(frozen) == 1 and frozen[0] > 10_000, lines
        assert any("serving on uvloop's event loop" in line for line in lines), lines
