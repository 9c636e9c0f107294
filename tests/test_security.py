"""Authentication, per-caller scoping, transport rules and query limits."""

from __future__ import annotations

import httpx

from tests.conftest import LARGE_KEY, MAIN_KEY, gateway_config, lemon_connections
from tests.harness import GraphQLClient, RunningGateway, document, running_gateway


async def test_production_profile_requires_an_api_key(lemon_url: str) -> None:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile="production")) as gateway:
        anonymous = await gateway.client().post(document("Dashboard"))
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        wrong = await gateway.client("not-a-key").post(document("Dashboard"))
        assert wrong.status_code == 401

        main = await gateway.client(MAIN_KEY).data("Dashboard")
        large = await gateway.client(LARGE_KEY).data("Dashboard")
        assert [c["name"] for c in main["connections"]] == ["lemon"]
        assert [c["name"] for c in large["connections"]] == ["lemon-large"]
        main_accounts = {a["accountNumber"] for a in main["connections"][0]["accounts"]}
        large_accounts = {a["accountNumber"] for a in large["connections"][0]["accounts"]}
        assert main_accounts and large_accounts and not main_accounts & large_accounts
        everything = await gateway.client(LARGE_KEY).data("Orders", {"first": 100})
        assert all(e["node"]["account"]["accountNumber"] in large_accounts for e in everything["orders"]["edges"])


async def test_production_profile_turns_off_graphiql_and_introspection(lemon_url: str) -> None:
    async with running_gateway(gateway_config(lemon_connections(lemon_url), profile="production")) as gateway:
        async with httpx.AsyncClient() as http:
            ide = await http.get(gateway.url, headers={"Accept": "text/html", "Authorization": f"Bearer {MAIN_KEY}"})
        assert "graphiql" not in ide.text.lower()
        body = (await gateway.client(MAIN_KEY).post("{ __schema { types { name } } }")).json()
        assert body.get("errors") and not body.get("data")


async def test_development_profile_serves_graphiql(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        page = await http.get(gateway.url, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_get_runs_queries_but_never_mutations(gateway: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {MAIN_KEY}", "x-graphql-csrf": "1"}  # a GET is a simple request: CSRF header
    async with httpx.AsyncClient() as http:
        query = await http.get(gateway.url, params={"query": "{ connections { name } }"}, headers=headers)
        assert query.status_code == 200 and query.json()["data"]["connections"][0]["name"] == "lemon"
        mutation = await http.get(gateway.url, params={
            "query": 'mutation { cancelOrder(input: {orderId: "x"}) { __typename } }'}, headers=headers)
    assert mutation.status_code == 405 and mutation.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_query_depth_aliases_and_tokens_are_limited(gql: GraphQLClient) -> None:
    deep = "{ connections " + "{ accounts { connection " * 7 + "{ name }" + " } }" * 7 + " }"
    body = (await gql.post(deep)).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    aliases = "{ " + " ".join(f"a{i}: connections {{ name }}" for i in range(40)) + " }"
    body = (await gql.post(aliases)).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    tokens = "{ connections { " + " ".join(["name"] * 3000) + " } }"
    body = (await gql.post(tokens)).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_healthz(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(gateway.url.replace("/graphql", "/healthz"))
    assert response.status_code == 200 and response.json()["status"] == "ok"
