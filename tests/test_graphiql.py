"""The explorer page and its assets as served (the browser test drives it): same-origin assets under a
Content-Security-Policy, on in development, off in production unless ``graphiql = true``; the vendored
files are the pinned packages' (``make graphiql-assets``), with their licences."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import httpx

from gateway.config import GatewayConfig
from gateway.graphiql import STATIC, explorer_tabs
from gateway.graphql.schema import build_schema
from tests.conftest import MAIN_KEY, gateway_config, lemon_connections
from tests.harness import QUERIES, RunningGateway, running_gateway

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}


async def test_the_page_and_every_asset_come_from_the_gateway(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.get(gateway.url, headers=HTML)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(assets) >= 8 and all(a.startswith("/graphiql/") or a == "data:," for a in assets), assets
        types = {}
        for asset in assets:
            if asset.startswith("/"):
                response = await http.get(gateway.url.replace("/graphql", "") + asset.replace("&amp;", "&"))
                assert response.status_code == 200, asset
                types[asset.split("?")[0].rsplit(".", 1)[-1]] = response.headers["content-type"]
    assert types["js"].startswith(("text/javascript", "application/javascript")) and types["css"].startswith("text/css")
    config = json.loads(re.search(r'<script id="gateway-graphiql-config" type="application/json">(.*?)</script>',
                                  page.text, re.S).group(1))  # type: ignore[union-attr]
    assert config["endpoint"] == "/graphql" and json.loads(config["headers"]) == {"Authorization": "Bearer "}
    assert [t["query"] for t in config["tabs"]][0] == (QUERIES / "Dashboard.graphql").read_text()


async def test_production_serves_no_explorer_unless_asked(lemon_url: str) -> None:
    production = gateway_config(lemon_connections(lemon_url), profile="production")
    async with running_gateway(production) as gateway, httpx.AsyncClient(timeout=10) as http:
        page = await http.get(gateway.url, headers=HTML)
        asset = await http.get(gateway.url.replace("/graphql", "/graphiql/setup.js"))
    assert page.status_code == 401 and asset.status_code == 404
    explorer = GatewayConfig.model_validate({**production.model_dump(), "graphiql": True})
    async with running_gateway(explorer) as gateway, httpx.AsyncClient(timeout=10) as http:
        page = await http.get(gateway.url, headers=HTML)
        asset = await http.get(gateway.url.replace("/graphql", "/graphiql/setup.js"))
        anonymous = await http.post(gateway.url, json={"query": "{ connections { name } }"})
        keyed = await http.post(gateway.url, json={"query": "{ connections { name } }"},
                                headers={"Authorization": f"Bearer {MAIN_KEY}"})
    assert page.status_code == 200 and "gateway-graphiql-config" in page.text and asset.status_code == 200
    assert anonymous.status_code == 401  # the page is public, the API is not
    assert keyed.json()["data"]["connections"] == [{"name": "lemon"}]


async def test_development_can_turn_the_explorer_off(lemon_url: str) -> None:
    config = GatewayConfig.model_validate({**gateway_config(lemon_connections(lemon_url)).model_dump(), "graphiql": False})
    async with running_gateway(config) as gateway, httpx.AsyncClient(timeout=10) as http:
        page = await http.get(gateway.url, headers=HTML)
        asset = await http.get(gateway.url.replace("/graphql", "/graphiql/setup.js"))
    assert page.status_code == 404 and "gateway-graphiql-config" not in page.text and asset.status_code == 404


def test_the_tabs_are_the_queries_documents_with_their_required_variables() -> None:
    tabs = explorer_tabs(schema=build_schema()._schema)
    assert len(tabs) == len(list(QUERIES.glob("*.graphql"))) and tabs[0]["query"].count("query Dashboard") == 1
    by_name = {re.search(r"(?:query|mutation|subscription) (\w+)", t["query"]).group(1): t for t in tabs}  # type: ignore[union-attr]
    assert by_name["Dashboard"]["variables"] is None  # every variable has a default
    assert json.loads(by_name["AccountOrders"]["variables"]) == {"id": ""}
    place = json.loads(by_name["PlaceOrder"]["variables"])["input"]
    assert place == {"instrument": {}, "side": "BUY", "type": "MARKET", "quantity": "1"}
    assert by_name["OrderStatusChanged"]["variables"] is None


def test_the_vendored_files_are_the_pinned_packages_with_their_licences() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("graphiql_assets", ROOT / "tools" / "graphiql_assets.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    vendor = STATIC / "vendor"
    versions = json.loads((vendor / "VERSIONS.json").read_text())
    assert {p: v["version"] for p, v in versions.items()} == {p: pin[0] for p, pin in tool.PINS.items()}
    assert versions["graphiql"]["version"] == "3.8.3"
    for package, record in versions.items():
        assert record["integrity"].startswith("sha512-")
        for name, digest in record["files"].items():
            data = (vendor / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, name  # nobody edited a vendored file
            assert b"sourceMappingURL" not in data[-300:], name  # no request for a map that is not shipped
        licence = (vendor / "LICENSES" / (package.replace("@", "").replace("/", "__") + ".txt")).read_text()
        assert "Permission is hereby granted" in licence, package  # MIT, the text itself
    listed = {n for r in versions.values() for n in r["files"]}
    assert listed == {p.name for p in vendor.iterdir() if p.is_file() and p.name != "VERSIONS.json"}


def test_make_graphiql_assets_refreshes_them_with_the_tool() -> None:
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "graphiql-assets"], capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert "tools/graphiql_assets.py" in dry.stdout
