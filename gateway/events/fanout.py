"""One execution per event for a group of WebSocket subscribers, and bounded per-socket send queues.

Subscribers (graphql-transport-ws operations) with the same document, operation name, variables and
visibility (the API key: the same principal sees the same accounts) form a :class:`Group`. A group
runs the subscription once (``schema.subscribe`` with a context of its own), and for each event it
executes the selection set once and serialises the ``payload`` once; each member receives
``{"id": <its operation id>, "type": "next", "payload": <the same bytes>}``. A resume (``after``
set) replays from its own position, so it forms a group of its own.

Every socket has a :class:`SocketWriter`: it writes the socket's messages in order, at once while
the socket takes them, and holds at most ``send_queue_limit`` messages behind a write that waits (the
client reads slowly). A socket with that many waiting (its client stopped reading, or reads slower
than events arrive) is closed with code 4008 and a reason saying so; the client resumes with
``after``. Fan-out hands each member its message (written there and then, or queued) and yields
to the event loop every ``yield_every`` members, so queries and mutations (the publishing one's
response too) are not held behind a large group. Once a connection is acknowledged its writer writes
with the server's own ``send`` (:mod:`gateway.server_send`): the middlewares act only on the
handshake and the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import OperationType, parse
from graphql.language import OperationDefinitionNode
from strawberry.types.execution import PreExecutionError

from ..server_send import SCOPE_KEY as SERVER_SEND

__all__ = ["Fanout", "Group", "SLOW_CONSUMER_CODE", "SocketWriter"]

log = logging.getLogger(__name__)

#: WebSocket close code for a subscriber that fell behind (4000-4999: application codes)
SLOW_CONSUMER_CODE = 4008


class _Rest:
    """Awaitable finishing a coroutine that :func:`_start` ran up to its first suspension: it hands the
    coroutine's pending future (or ``None``: a bare yield) to the awaiting task, then resumes the
    coroutine with what the task sends or throws (a cancellation reaches the coroutine's own await)."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting = self.coro, self.waiting
        while True:
            try:
                yield waiting
            except BaseException as exc:  # noqa: BLE001 - thrown into the task (cancellation): pass it on
                try:
                    waiting = coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting = coro.send(None)
            except StopIteration:
                return


def _start(coro: Coroutine[Any, Any, Any]) -> _Rest | None:
    """Run ``coro`` in the caller until it finishes (``None``) or first suspends (an awaitable that
    finishes it); its exception, if it raises before suspending, is raised here."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return _Rest(coro, waiting)


class SocketWriter:
    """Writes one socket's messages in order, with at most ``limit`` waiting (see the module docstring).

    An idle socket costs no task and no queue: a message is written at once, in the caller, when
    nothing waits before it (uvicorn's ASGI ``send`` hands the frame to the transport and returns
    without suspending while the transport takes data). Only when a write suspends (the transport's
    buffer is full: the client reads slowly) does a task finish it and write, in order, what queued
    behind it meanwhile; when those are written the socket is idle again. A socket that already has
    ``limit`` messages waiting is closed (:data:`SLOW_CONSUMER_CODE`). A write that fails (the
    socket is gone) stops the writer: later messages are dropped."""

    __slots__ = ("_closing", "backlog", "close_socket", "closed", "limit", "on_overflow", "reason", "send_text",
                 "task")

    def __init__(self, send_text: Callable[[str], Coroutine[Any, Any, Any]], close: Callable[[int, str], Any],
                 limit: int, on_overflow: Callable[[], Any] | None = None) -> None:
        self.send_text = send_text
        self.close_socket = close
        self.limit = limit
        self.on_overflow = on_overflow
        self.backlog: deque[str] | None = None  # messages behind a suspended write; None: idle
        self.task: asyncio.Task[None] | None = None  # finishing a suspended write, while there is one
        self.closed = False
        self.reason: str | None = None
        self._closing: asyncio.Task[None] | None = None

    def push(self, text: str) -> bool:
        """Write ``text`` now, or queue it behind a suspended write; ``False`` (and the socket closing)
        when ``limit`` messages are already waiting, or when the writer has stopped."""
        if self.closed:
            return False
        if self.backlog is not None:
            if len(self.backlog) >= self.limit:
                self.overflow()
                return False
            self.backlog.append(text)
            return True
        try:
            rest = _start(self.send_text(text))
        except Exception:  # noqa: BLE001 - the socket is gone (its handler ends the operations)
            self.closed = True
            return False
        if rest is not None:
            self.backlog = deque()
            self.task = asyncio.get_running_loop().create_task(self._drain(rest), name="ws-writer")
        return True

    def overflow(self) -> None:
        self.closed = True
        self.reason = (f"slow consumer: {self.limit} messages were waiting to be sent; reconnect and resume "
                       "with `after: <last eventId>`")
        self.backlog = None
        if self.task is not None:
            self.task.cancel()  # the write it waits on may never finish: the client does not read
        if self.on_overflow is not None:
            self.on_overflow()  # its operations end now, whatever the socket does
        self._closing = asyncio.get_running_loop().create_task(self._close(SLOW_CONSUMER_CODE, self.reason))

    async def _close(self, code: int, reason: str) -> None:
        # the close frame follows what the socket already holds: it goes out when the client reads
        # again, or the connection is dropped (keep-alive pings time out) and this ends with it
        with contextlib.suppress(Exception):
            await self.close_socket(code, reason)

    async def _drain(self, rest: _Rest) -> None:
        try:
            await rest
            while self.backlog:
                await self.send_text(self.backlog.popleft())
        except Exception:  # noqa: BLE001 - the socket is gone (its handler ends the operations)
            self.closed = True
        finally:
            self.backlog = None
            self.task = None

    async def aclose(self) -> None:
        """Stop writing (the socket is going away); what is queued is dropped."""
        self.closed = True
        self.backlog = None
        task = self.task
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@dataclass(eq=False, slots=True)
class Member:
    """One operation of one socket in a group."""

    op_id: str
    writer: SocketWriter
    prefix: str  # '{"id":<op id>,"type":"next","payload":'
    on_end: Callable[[list[dict[str, Any]] | None], None]  # the group ended: its errors, or None (complete)


@lru_cache(maxsize=256)
def _operation_type(query: str, operation_name: str | None) -> OperationType | None:
    """The type of the operation ``operation_name`` of ``query`` (``None``: does not parse, or no such
    operation; the ordinary path answers those)."""
    try:
        document = parse(query)
    except Exception:  # noqa: BLE001 - strawberry reports the syntax error itself
        return None
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        ops = [d for d in ops if d.name is not None and d.name.value == operation_name]
    return ops[0].operation if len(ops) == 1 else None


class Group:
    """Members sharing one execution of one subscription (see the module docstring)."""

    def __init__(self, fanout: Fanout, key: tuple[Any, ...], query: str, variables: dict[str, Any] | None,
                 operation_name: str | None, context: Any) -> None:
        self.fanout = fanout
        self.key = key
        self.query = query  # the members' operations share these (one copy per group, not per socket)
        self.variables = variables
        self.members: dict[Member, None] = {}
        self.task = asyncio.get_running_loop().create_task(self._run(query, variables, operation_name, context),
                                                           name="subscription-group")

    async def _run(self, query: str, variables: dict[str, Any] | None, operation_name: str | None,
                   context: Any) -> None:
        errors: list[dict[str, Any]] | None = None
        try:
            stream = await self.fanout.schema.subscribe(query, variable_values=variables, context_value=context,
                                                        operation_name=operation_name)
            if not hasattr(stream, "__aiter__"):  # refused before execution (validation, ...)
                errors = [e.formatted for e in (stream.errors or [])]
                return
            try:
                first = True
                async for result in stream:
                    if first and isinstance(result, PreExecutionError):  # refused before execution
                        errors = [e.formatted for e in (result.errors or [])]
                        return
                    first = False
                    self.fanout.executions += 1
                    body: dict[str, Any] = {"data": result.data}
                    if result.errors:
                        body["errors"] = [self.fanout.format_error(e) for e in result.errors]
                    payload = json.dumps(body, default=str, separators=(",", ":"))
                    texts: dict[str, str] = {}  # members with the same operation id get the same message
                    n = 0
                    for member in list(self.members):
                        text = texts.get(member.prefix)
                        if text is None:
                            text = texts[member.prefix] = member.prefix + payload + "}"
                        member.writer.push(text)
                        n += 1
                        if n % self.fanout.yield_every == 0:
                            await asyncio.sleep(0)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
        finally:
            self.fanout.groups.pop(self.key, None)
            for member in list(self.members):
                try:
                    member.on_end(errors)
                except Exception:  # one member's end must not cost the others theirs
                    log.exception("ending a grouped subscription failed")

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)
        if not self.members and not self.task.done():
            self.fanout.groups.pop(self.key, None)
            self.task.cancel()  # nobody listens: close the stream and release its watchers


class Fanout:
    """The groups of one app; ``executions`` counts selection-set executions of events."""

    def __init__(self, schema: Any, send_queue_limit: int = 1000, yield_every: int = 64,
                 format_error: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.schema = schema
        self.send_queue_limit = send_queue_limit
        self.yield_every = yield_every
        self.format_error = format_error or (lambda e: e.formatted)
        self.groups: dict[tuple[Any, ...], Group] = {}
        self.executions = 0

    @staticmethod
    def groupable(query: str | None, variables: dict[str, Any] | None, operation_name: str | None) -> bool:
        """A subscription without ``after`` (a resume replays from its own position)."""
        if not isinstance(query, str):
            return False
        if variables and variables.get("after") is not None:
            return False
        if _operation_type(query, operation_name) is not OperationType.SUBSCRIPTION:
            return False
        return "after:" not in query.replace(" ", "") or "$after" in query.replace(" ", "")

    def join(self, visibility: Any, query: str, variables: dict[str, Any] | None, operation_name: str | None,
             context: Callable[[], Any], op_id: str, writer: SocketWriter,
             on_end: Callable[[list[dict[str, Any]] | None], None]) -> tuple[Group, Member]:
        """Add operation ``op_id`` of the socket ``writer`` writes to to the group of its document,
        variables, operation name and ``visibility`` (started with a context from ``context()`` when
        there is none); ``on_end`` is called once if the group ends (its stream ended: ``None``; it was
        refused or failed: the errors) while the member is in it."""
        key = (visibility, query, json.dumps(variables or {}, sort_keys=True, default=str), operation_name)
        group = self.groups.get(key)
        if group is None or group.task.done():
            group = self.groups[key] = Group(self, key, query, variables, operation_name, context())
        member = Member(op_id, writer, '{"id":' + json.dumps(op_id) + ',"type":"next","payload":', on_end)
        group.members[member] = None
        return group, member


def grouped_ws_handler(base: type[Any]) -> type[Any]:
    """``base`` (a strawberry graphql-transport-ws handler class) with its subscriptions run in groups
    and every message written through the socket's :class:`SocketWriter`. The view must have
    ``fanout`` (a :class:`Fanout`), ``events`` and ``context_for(principal, request)``; operations
    that cannot be grouped (queries, mutations, resumes, documents that do not parse) run as
    strawberry runs them.

    A grouped operation holds no task of its own while it runs: strawberry's operation task joins the
    group and ends; the operation stays registered until the client completes it (``complete``), the
    socket goes, or the group ends (then its ``complete`` or ``error`` message is sent)."""

    class GroupedTransportWSHandler(base):  # type: ignore[misc, valid-type]
        _writer: SocketWriter | None = None
        _grouped: dict[str, tuple[Group, Member]] | None = None  # operation id -> its place in a group

        def writer(self) -> SocketWriter:
            if self._writer is None:
                ws = self.websocket.ws  # the Starlette WebSocket behind strawberry's adapter
                self._writer = SocketWriter(ws.send_text, self.websocket.close, self.view.fanout.send_queue_limit,
                                            on_overflow=self._end_operations)
            return self._writer

        async def send_message(self, message: Any) -> None:
            self.writer().push(json.dumps(message, separators=(",", ":")))

        async def handle_connection_init(self, message: Any) -> None:
            await super().handle_connection_init(message)
            if self.connection_acknowledged:  # the ack went through every layer; the rest need not
                server_send = self.websocket.ws.scope.get(SERVER_SEND)
                if server_send is not None:
                    self.writer().send_text = _text_sender(server_send)

        def _leave(self, operation_id: str) -> bool:
            """Take operation ``operation_id`` out of its group; ``False`` when it is in none."""
            place = self._grouped.pop(operation_id, None) if self._grouped else None
            if place is None:
                return False
            group, member = place
            group.leave(member)
            self.view.events.metrics.active_subscriptions.dec()
            return True

        def _end_operations(self) -> None:
            for operation_id in list(self.operations):
                operation = self.operations.pop(operation_id)
                self._leave(operation_id)
                if operation.task is not None:
                    operation.task.cancel()

        async def cleanup_operation(self, operation_id: str) -> None:
            if self._leave(operation_id):
                self.operations.pop(operation_id, None)
                return
            await super().cleanup_operation(operation_id)

        async def shutdown(self) -> None:
            try:
                await super().shutdown()
            finally:
                if self._writer is not None:
                    await self._writer.aclose()

        async def run_operation(self, operation: Any) -> None:
            fanout: Fanout = self.view.fanout
            if not fanout.groupable(operation.query, operation.variables, operation.operation_name):
                await super().run_operation(operation)
                return
            principal = self.context.principal
            visibility = (principal.name, tuple(sorted(getattr(principal, "connections", None) or ())))

            def context() -> Any:
                made = self.view.context_for(principal, None)
                made.grouped = True
                return made

            def ended(errors: list[dict[str, Any]] | None) -> None:
                if not self._leave(operation.id):
                    return  # completed by the client or the socket meanwhile
                if errors:
                    final = operation.send_operation_message({"id": operation.id, "type": "error", "payload": errors})
                else:
                    final = operation.send_operation_message({"id": operation.id, "type": "complete"})
                rest = _start(final)  # queues the message on the writer: does not wait
                if rest is not None:
                    asyncio.get_running_loop().create_task(_finish(rest))

            group, member = fanout.join(visibility, operation.query, operation.variables, operation.operation_name,
                                        context, operation.id, self.writer(), ended)
            if self._grouped is None:
                self._grouped = {}
            self._grouped[operation.id] = (group, member)
            self.view.events.metrics.active_subscriptions.inc()
            operation.query, operation.variables = group.query, group.variables  # the group's copies
            operation.task = None  # this task ends now: the operation lives in its group

    return GroupedTransportWSHandler


async def _finish(rest: _Rest) -> None:
    await rest


def _text_sender(send: Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]) -> Callable[[str], Coroutine[Any, Any, Any]]:
    """``send_text`` for a :class:`SocketWriter` writing with the ASGI ``send`` of the server."""

    def send_text(text: str) -> Coroutine[Any, Any, Any]:
        return send({"type": "websocket.send", "text": text})

    return send_text
