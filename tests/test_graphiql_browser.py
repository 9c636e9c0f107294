"""The explorer in a real browser: Debian's Chromium, headless, driven by Playwright, with every request
to a host other than 127.0.0.1 failed (and recorded): the page must work with the network unreachable.

``make test`` installs the ``chromium`` Debian package where it is missing; Playwright's own browser
downloads are never used (``executable_path``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, Route, async_playwright

from tests.conftest import MAIN_KEY
from tests.harness import RunningGateway, document

CHROMIUM = "/usr/bin/chromium"
#: what Chromium needs on these machines: no sandbox (root, containers), no GPU, nothing phoning home
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 30_000  # ms, for anything the page does


class Observed:
    """What the page did that it must not: requests off the machine, failed requests, console errors."""

    def __init__(self) -> None:
        self.offsite: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []

    async def route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            self.offsite.append(url)
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda response: self.failed.append(f"{response.status} {response.url}")
                if response.status >= 400 else None)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(message.text)

    def _failed(self, request: Request) -> None:
        self.failed.append(f"{request.failure} {request.url}")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    assert shutil.which(CHROMIUM), "Chromium is missing: run the tests with `make test`, which installs it"
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900})
        try:
            yield context
        finally:
            await context.close()


async def _result_text(page: Page) -> str:
    return str(await page.locator(".graphiql-response .CodeMirror").first.evaluate(
        "node => node.CodeMirror.getValue()"))


async def _wait_result(page: Page, predicate: Any, what: str) -> str:
    deadline = asyncio.get_running_loop().time() + TIMEOUT / 1000
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = await _result_text(page)
        if text and predicate(text):
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: the result pane shows {text[:500]!r}")


async def _open_tab(page: Page, title: str) -> None:
    """Switch tabs and wait until the editor has parsed the tab's document (GraphiQL's query editor
    carries the parsed operation's name; running before that would send the previous tab's)."""
    await page.locator(".graphiql-tab-button", has_text=title).first.click()
    await page.wait_for_function(
        "title => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.operationName === title",
        arg=title, timeout=TIMEOUT)


async def test_the_explorer_works_offline(browser: BrowserContext, gateway: RunningGateway) -> None:
    observed = Observed()
    await browser.route("**/*", observed.route)
    page = browser.pages[0] if browser.pages else await browser.new_page()
    page.set_default_timeout(TIMEOUT)
    observed.attach(page)

    # the page renders the editor, the Dashboard tab first, the headers pre-filled
    await page.goto(gateway.url)
    await page.wait_for_selector(".graphiql-query-editor .CodeMirror")
    editor = await page.locator(".graphiql-query-editor .CodeMirror").evaluate("n => n.CodeMirror.getValue()")
    assert editor == document("Dashboard")
    titles = await page.locator(".graphiql-tab-button").all_inner_texts()
    assert titles[0] == "Dashboard" and "OrderStatusChanged" in titles and len(titles) == 14, titles
    headers = await page.locator(".graphiql-editor-tool .CodeMirror").last.evaluate("n => n.CodeMirror.getValue()")
    assert json.loads(headers) == {"Authorization": "Bearer "}

    # the Dashboard runs from the page and shows lemon data
    await page.locator(".graphiql-execute-button").click()
    text = await _wait_result(page, lambda t: '"connections"' in t, "Dashboard")
    result = json.loads(text)
    assert not result.get("errors"), result
    lemon = {c["name"]: c for c in result["data"]["connections"]}["lemon"]
    assert lemon["broker"] == "LEMON" and lemon["accounts"][0]["positions"]["totalCount"] > 0

    # the schema documentation opens on Order
    await page.locator('button[aria-label="Show Documentation Explorer"]').click()
    search = page.locator(".graphiql-doc-explorer-search input")
    await search.fill("Order")
    option = page.locator(".graphiql-doc-explorer-search [role=option]").get_by_text("Order", exact=True).first
    await option.click()
    await page.wait_for_function(
        "() => document.querySelector('.graphiql-doc-explorer-title')?.textContent.trim() === 'Order'")
    docs = await page.locator(".graphiql-doc-explorer").inner_text()
    assert "clientOrderId" in docs and "brokerOrderId" in docs, docs[:500]

    # a subscription started from the page shows the status change of an order placed meanwhile
    await _open_tab(page, "OrderStatusChanged")
    await page.locator(".graphiql-execute-button").click()
    await asyncio.sleep(1.0)  # the subscription is open before the order exists
    order = await _place_order(gateway)
    text = await _wait_result(page, lambda t: order in t, "the subscription")
    event = json.loads(text)["data"]["orderStatusChanged"]
    assert event["order"]["id"] == order and event["status"], event
    assert event["previousStatus"] != event["status"]

    # the explorer plugin (vendored too) shows the schema's fields. (On the Dashboard tab the OneGraph
    # explorer logs "arg mismatch between arg and selection" for the literal enum list of its filter:
    # a bug of graphiql-explorer 0.9.0, hence this tab.)
    await page.locator('button[aria-label="Show GraphiQL Explorer"]').click()
    await page.locator(".graphiql-explorer-root").get_by_text("orderStatusChanged", exact=True).first.wait_for()

    assert observed.offsite == [], observed.offsite  # nothing tried to leave the machine
    assert observed.failed == [], observed.failed
    assert observed.errors == [], observed.errors
    assert any("/graphiql/vendor/graphiql.min.js" in url for url in observed.requests)


async def _place_order(gateway: RunningGateway) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {MAIN_KEY}"}
        dashboard = (await http.post(gateway.url, json={"query": document("Dashboard")}, headers=headers)).json()
        account = dashboard["data"]["connections"][0]["accounts"][0]["id"]
        placed = (await http.post(gateway.url, headers=headers, json={"query": document("PlaceOrder"), "variables": {
            "input": {"accountId": account, "instrument": {"isin": "US0378331005"}, "side": "BUY",
                      "type": "MARKET", "quantity": "1"}}})).json()
    assert placed["data"]["placeOrder"]["__typename"] == "OrderPlaced", placed
    return str(placed["data"]["placeOrder"]["order"]["id"])
