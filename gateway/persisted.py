"""Persisted operations: a manifest of known documents and Automatic Persisted Queries (Apollo's protocol).

A *manifest* is a JSON object mapping the SHA-256 (hex) of each document's exact UTF-8 text to that
text; ``broker-gateway persisted-manifest queries/`` builds it. A client then sends
``{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}, "variables": ...}``
without ``query`` (over POST, GET, WebSocket or SSE).

``persisted_operations`` (configuration) chooses what is accepted:

* ``"off"``: documents only; a request with ``persistedQuery`` gets ``PERSISTED_QUERY_NOT_SUPPORTED``.
* ``"allow"`` (default): documents; hashes from the manifest; and APQ: an unknown hash gets
  ``PERSISTED_QUERY_NOT_FOUND``, the client resends hash and document, the gateway checks the hash
  (``PERSISTED_QUERY_HASH_MISMATCH``) and keeps the document (``persisted_cache_size`` of them, least
  recently used go first, and only documents that validated) so that the hash alone serves it from
  then on.
* ``"require"``: only the manifest's operations, by hash or by their exact text: anything else gets
  ``PERSISTED_QUERY_NOT_IN_LIST`` and nothing registers (the production allow-list of known frontends).

Refusals are GraphQL errors with ``extensions.code`` (HTTP 200 with ``errors[]``, a graphql-ws ``error``
message, or an SSE ``next`` event), the shape Apollo clients look for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, OperationType, parse
from strawberry.extensions import SchemaExtension
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

__all__ = [
    "PersistedOperations",
    "PersistedQueryError",
    "build_manifest",
    "document_hash",
    "load_manifest",
    "persisted_query_hash",
    "persisted_ws_handler",
]

Mode = Literal["off", "allow", "require"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def document_hash(document: str) -> str:
    """The SHA-256 (hex) of ``document``'s exact UTF-8 text: the manifest's key and the APQ hash."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class PersistedQueryError(Exception):
    """A refused persisted-operation request; ``code`` is its ``extensions.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})

    @property
    def formatted(self) -> dict[str, Any]:
        return dict(self.graphql_error().formatted)


def persisted_query_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """The ``sha256Hash`` of a request's ``extensions.persistedQuery``; ``None`` without one.

    Raises ``PersistedQueryError`` (``BAD_USER_INPUT``) for a malformed one or a version other than 1.
    """
    if not extensions or extensions.get("persistedQuery") is None:
        return None
    pq = extensions["persistedQuery"]
    if not isinstance(pq, Mapping):
        raise PersistedQueryError("BAD_USER_INPUT", "extensions.persistedQuery must be an object")
    if pq.get("version") != 1:
        raise PersistedQueryError("BAD_USER_INPUT", "Unsupported persisted query version (only version 1)")
    digest = pq.get("sha256Hash")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
        raise PersistedQueryError("BAD_USER_INPUT", "extensions.persistedQuery.sha256Hash must be 64 hex digits")
    return digest.lower()


def build_manifest(directory: str | Path, *, schema: Any = None) -> dict[str, str]:
    """``{sha256: document}`` of every ``*.graphql`` file under ``directory`` (sorted by path).

    Each document must parse and, when a ``strawberry.Schema`` is given, validate against it; raises
    ``ValueError`` naming the file otherwise.
    """
    from graphql import validate

    manifest: dict[str, str] = {}
    files = sorted(Path(directory).rglob("*.graphql"))
    if not files:
        raise ValueError(f"no *.graphql documents under {directory}")
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            document = parse(text)
        except GraphQLError as exc:
            raise ValueError(f"{path}: {exc.message}") from None
        if schema is not None:
            errors = validate(schema._schema, document)
            if errors:
                raise ValueError(f"{path}: {errors[0].message}")
        manifest[document_hash(text)] = text
    return manifest


def load_manifest(path: str | Path) -> dict[str, str]:
    """Read a manifest file; raises ``ValueError`` naming the problem (not JSON, not an object of
    strings, a key that is not the document's SHA-256) and ``OSError`` when it cannot be read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a manifest is a JSON object of sha256 → document")
    for key, document in data.items():
        if not isinstance(document, str):
            raise ValueError(f"{path}: the entry {key!r} is not a document string")
        if document_hash(document) != key.lower():
            raise ValueError(f"{path}: the entry {key!r} is not the SHA-256 of its document")
    return {key.lower(): document for key, document in data.items()}


class PersistedOperations:
    """What ``persisted_operations`` accepts (see the module docstring); one per app."""

    def __init__(self, mode: Mode = "allow", manifest: Mapping[str, str] | None = None, cache_size: int = 1000) -> None:
        self.mode: Mode = mode
        self.manifest: dict[str, str] = dict(manifest or {})
        self.cache: LRUCache[str, str] = LRUCache(maxsize=max(cache_size, 1))
        self.cache_size = cache_size

    @classmethod
    def from_config(cls, config: Any) -> PersistedOperations:
        """From a ``GatewayConfig`` (``persisted_operations``, ``persisted_manifest``, ``persisted_cache_size``)."""
        manifest = load_manifest(config.persisted_manifest) if config.persisted_manifest else {}
        return cls(config.persisted_operations, manifest, config.persisted_cache_size)

    def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run for a request's ``query`` and ``extensions``.

        Returns ``query`` itself when it is accepted as sent (``None`` stays ``None``: no document at
        all is the transport's "query is required" error). Raises ``PersistedQueryError``.
        """
        digest = persisted_query_hash(extensions)
        if digest is not None and self.mode == "off":
            raise PersistedQueryError("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
        if query is not None:
            if digest is not None and document_hash(query) != digest:
                raise PersistedQueryError("PERSISTED_QUERY_HASH_MISMATCH", "provided sha does not match query")
            if self.mode == "require" and (digest or document_hash(query)) not in self.manifest:
                raise PersistedQueryError("PERSISTED_QUERY_NOT_IN_LIST",
                                          "only the operations of the persisted-operation manifest are allowed")
            return query
        if digest is None:
            return None
        document = self.manifest.get(digest)
        if document is None and self.mode == "allow":
            document = self.cache.get(digest)
        if document is None:
            if self.mode == "require":
                raise PersistedQueryError("PERSISTED_QUERY_NOT_IN_LIST",
                                          "no operation with this hash in the persisted-operation manifest")
            raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
        return document

    def register(self, query: str, extensions: Mapping[str, Any] | None) -> None:
        """APQ registration (``allow`` mode): keep ``query`` under the hash it was sent with. Called
        once the document has validated, so that the cache holds only runnable documents."""
        digest = persisted_query_hash(extensions)
        if (self.mode == "allow" and digest is not None and digest not in self.manifest and self.cache_size > 0
                and document_hash(query) == digest):
            self.cache[digest] = query

    def extension(self) -> type[SchemaExtension]:
        """A schema extension applying :meth:`resolve` to every operation, whatever its transport."""
        return _extension_for(self)


def _refusal_document(allowed: Any, operation_name: str | None) -> DocumentNode:
    """A stand-in document whose operation type and name fit the request, so that strawberry reaches
    its pre-execution-error answer (our error) instead of a transport error about the missing query."""
    kinds = [t.value if hasattr(t, "value") else str(t) for t in allowed]
    kind = next((k for k in (OperationType.QUERY.value, OperationType.MUTATION.value,
                             OperationType.SUBSCRIPTION.value) if k in kinds), OperationType.QUERY.value)
    name = operation_name if operation_name and _NAME.fullmatch(operation_name) else ""
    return parse(f"{kind} {name} {{ __typename }}")


def _extension_for(store: PersistedOperations) -> type[SchemaExtension]:
    class PersistedOperationsExtension(SchemaExtension):
        """Fills in the document of a hash-only request and refuses what the mode does not accept."""

        def on_operation(self) -> Iterator[None]:
            ctx = self.execution_context
            try:
                ctx.query = store.resolve(ctx.query, ctx.operation_extensions)
            except PersistedQueryError as exc:
                ctx.graphql_document = _refusal_document(ctx.allowed_operations, ctx.operation_name)
                ctx.pre_execution_errors = [exc.graphql_error()]
            yield

        def on_validate(self) -> Iterator[None]:
            yield
            ctx = self.execution_context
            if not ctx.pre_execution_errors and ctx.query is not None:
                store.register(ctx.query, ctx.operation_extensions)

    return PersistedOperationsExtension


def persisted_ws_handler(store: PersistedOperations) -> type[BaseGraphQLTransportWSHandler[Any, Any]]:
    """strawberry's graphql-transport-ws handler, taking a hash-only ``subscribe`` too: the document is
    filled in from ``store`` before the operation starts; a refusal is the operation's ``error`` message.
    (strawberry does not hand a WebSocket message's ``extensions`` to the schema, so this cannot be
    left to the extension.)"""

    class PersistedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
        async def handle_subscribe(self, message: Any) -> None:
            payload = message.get("payload") or {}
            if self.connection_acknowledged and payload.get("query") is None:
                try:
                    document = store.resolve(None, payload.get("extensions"))
                except PersistedQueryError as exc:
                    await self.send_message({"id": message["id"], "type": "error", "payload": [exc.formatted]})
                    return
                message = {**message, "payload": {**payload, "query": document}}
            await super().handle_subscribe(message)

    return PersistedTransportWSHandler
