"""The GraphiQL explorer, served by the gateway itself: no request leaves the machine.

``GET /graphql`` from a browser (``Accept: text/html``, no ``query`` parameter) answers the page; its
scripts and styles (react, react-dom, graphiql, the explorer plugin: pinned, vendored under
``static/vendor/`` with their licences by ``make graphiql-assets``) and ``static/setup.js`` come from
``/graphiql/``. The page is configured for this gateway: queries over HTTP at ``/graphql``,
subscriptions over the graphql-transport-ws protocol at the same path, a header editor pre-filled
with ``{"Authorization": "Bearer "}`` (the key goes after the space; the header is also sent in the
WebSocket's ``connection_init``), and one ready tab per document of the project's ``queries/``
(Dashboard first) with its required variables sketched. A Content-Security-Policy limits the page to
its own origin.

On in the development profile, off in production unless ``graphiql = true``.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    type_from_ast,
)
from graphql.pyutils import Undefined
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["ASSET_PREFIX", "STATIC", "explorer_page", "explorer_tabs", "static_files", "wants_explorer_page"]

STATIC = Path(__file__).resolve().parent / "static"
ASSET_PREFIX = "/graphiql"
#: the project's operation documents, offered as tabs (present in a source checkout)
QUERIES = Path(__file__).resolve().parent.parent.parent / "queries"
DEFAULT_HEADERS = {"Authorization": "Bearer "}
FIRST_TAB = "Dashboard"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_SCRIPTS = ("vendor/react.production.min.js", "vendor/react-dom.production.min.js", "vendor/graphiql.min.js",
            "vendor/plugin-explorer.umd.js", "setup.js")
_STYLES = ("vendor/graphiql.min.css", "vendor/plugin-explorer.css", "page.css")


def static_files() -> StaticFiles:
    """The page's scripts, styles and licences, to mount at :data:`ASSET_PREFIX`."""
    return StaticFiles(directory=STATIC)


def wants_explorer_page(scope: Scope) -> bool:
    """Whether a request is a browser asking ``/graphql`` for the page (what strawberry renders it for:
    ``GET`` without a ``query`` parameter, accepting HTML)."""
    if scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") != "/graphql":
        return False
    request = Request(scope)
    accept = request.headers.get("accept", "")
    return "query" not in request.query_params and ("text/html" in accept or "*/*" in accept)


@cache
def _asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def _asset(name: str) -> str:
    return f"{ASSET_PREFIX}/{name}?v={_asset_version(name)}"


def _placeholder(type_: GraphQLInputType, depth: int = 0) -> Any:
    """A value of ``type_`` to edit: required input fields only, enums' first value."""
    if isinstance(type_, GraphQLNonNull):
        return _placeholder(type_.of_type, depth)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        if depth > 3:
            return {}
        return {name: _placeholder(field.type, depth + 1) for name, field in type_.fields.items()
                if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined}
    if isinstance(type_, GraphQLScalarType):
        return {"Int": 0, "Float": 0, "Boolean": False, "Decimal": "1"}.get(type_.name, "")
    return None


def _variables(document: str, schema: GraphQLSchema | None) -> str | None:
    """The JSON of a document's required variables (those without a default), or ``None``."""
    if schema is None:
        return None
    values: dict[str, Any] = {}
    for definition in parse(document).definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for variable in definition.variable_definitions:
            type_ = type_from_ast(schema, variable.type)
            if isinstance(type_, GraphQLNonNull) and variable.default_value is None:
                values[variable.variable.name.value] = _placeholder(type_)  # type: ignore[arg-type]
    return json.dumps(values, indent=2) if values else None


def explorer_tabs(directory: Path = QUERIES, schema: GraphQLSchema | None = None) -> list[dict[str, Any]]:
    """One GraphiQL tab per ``*.graphql`` document of ``directory`` (``Dashboard`` first), with the
    default headers and a sketch of the required variables; ``[]`` when there is no such directory."""
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.graphql"), key=lambda p: (p.stem != FIRST_TAB, p.stem))
    headers = json.dumps(DEFAULT_HEADERS, indent=2)
    return [{"query": path.read_text(encoding="utf-8"), "variables": _variables(path.read_text(encoding="utf-8"), schema),
             "headers": headers} for path in files]


def _page(tabs: Sequence[dict[str, Any]], endpoint: str) -> str:
    config = {"endpoint": endpoint, "headers": json.dumps(DEFAULT_HEADERS, indent=2), "tabs": list(tabs)}
    # JSON inside <script>: "<" escaped so that no document text can close the element
    data = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    styles = "\n".join(f'    <link rel="stylesheet" href="{html.escape(_asset(s))}">' for s in _STYLES)
    scripts = "\n".join(f'    <script src="{html.escape(_asset(s))}"></script>' for s in _SCRIPTS)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>broker-gateway · GraphiQL</title>
    <link rel="icon" href="data:,">
{styles}
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script id="gateway-graphiql-config" type="application/json">{data}</script>
{scripts}
  </body>
</html>
"""


def explorer_page(tabs: Sequence[dict[str, Any]], endpoint: str = "/graphql") -> HTMLResponse:
    """The explorer page for ``endpoint`` with ``tabs`` (see :func:`explorer_tabs`)."""
    return HTMLResponse(_page(tabs, endpoint), headers={
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    })
