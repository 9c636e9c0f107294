"""Pending IBKR reply questions and what became of them, in memory or in Redis (so that any replica
answers ``confirmOrder``).

A question for the user is a :class:`PendingConfirmation` under a fresh token, kept
``confirmation_ttl`` seconds. :meth:`take` hands it to exactly one caller (answering it twice must
not place twice); once answered, :meth:`settle` records the answer (the order placed, declined, or a
further question) so that the same token asked again gets the same answer, and a caller that arrives
while another is still answering waits for it (:meth:`wait_answer`). Only a token never issued (or
long expired) is unknown.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import simplejson

from .. import budget

__all__ = ["Answer", "ConfirmationStore", "OrderSpec", "PendingConfirmation", "RedisConfirmationStore"]


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order request as sent: ``target`` is the path account (an account or an allocation
    group), ``account`` the account the order is keyed under (the master for a group order),
    ``order_id`` set for a modification."""

    account: str
    target: str
    client_order_id: str | None
    body: dict[str, Any]
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A question waiting for the user: IBKR's ``reply_id`` for it, the message ids it asks
    (``asked``) and those the user accepted before (``accepted``); ``seq`` and ``replica`` tell
    whether the reply id may still be alive (nothing reached the session since, from this process)."""

    token: str
    spec: OrderSpec
    reply_id: str
    asked: frozenset[str]
    accepted: frozenset[str]
    seq: int
    replica: str
    expires: float  # wall-clock (time.time()) seconds


@dataclass(frozen=True, slots=True)
class Answer:
    """What a confirmation came to: ``placed`` (``order`` = [account, order id]), ``declined`` or
    ``asked`` (``token`` = the next question's)."""

    kind: str
    order: tuple[str, str] | None = None
    token: str | None = None
    messages: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()


def _dump(p: PendingConfirmation) -> str:
    return simplejson.dumps({"token": p.token, "spec": {"account": p.spec.account, "target": p.spec.target,
                                                        "coid": p.spec.client_order_id, "body": p.spec.body,
                                                        "order_id": p.spec.order_id},
                             "reply_id": p.reply_id, "asked": sorted(p.asked), "accepted": sorted(p.accepted),
                             "seq": p.seq, "replica": p.replica, "expires": p.expires}, use_decimal=True)


def _load(raw: str | bytes) -> PendingConfirmation:
    d = simplejson.loads(raw, use_decimal=True)
    s = d["spec"]
    return PendingConfirmation(d["token"], OrderSpec(s["account"], s["target"], s["coid"], s["body"], s["order_id"]),
                               d["reply_id"], frozenset(d["asked"]), frozenset(d["accepted"]), int(d["seq"]),
                               d["replica"], float(d["expires"]))


def _dump_answer(a: Answer) -> str:
    return simplejson.dumps({"kind": a.kind, "order": list(a.order) if a.order else None, "token": a.token,
                             "messages": list(a.messages), "message_ids": list(a.message_ids)})


def _load_answer(raw: str | bytes) -> Answer:
    d = simplejson.loads(raw)
    return Answer(d["kind"], tuple(d["order"]) if d["order"] else None, d["token"], tuple(d["messages"]),
                  tuple(d["message_ids"]))


class ConfirmationStore:
    """In this process (one replica)."""

    def __init__(self, ttl: float = 120.0, answer_ttl: float = 86_400.0) -> None:
        self.ttl = ttl
        self.answer_ttl = answer_ttl
        self._pending: dict[str, PendingConfirmation] = {}
        self._answers: dict[str, tuple[float, Answer]] = {}
        self._answering: set[str] = set()

    def new(self, spec: OrderSpec, reply_id: str, asked: tuple[str, ...], accepted: frozenset[str], seq: int,
            replica: str) -> PendingConfirmation:
        return PendingConfirmation(secrets.token_urlsafe(18), spec, reply_id, frozenset(asked), accepted, seq,
                                   replica, time.time() + self.ttl)

    async def put(self, pending: PendingConfirmation) -> None:
        now = time.time()
        for token in [t for t, p in self._pending.items() if p.expires <= now]:
            del self._pending[token]
        for token in [t for t, (at, _) in self._answers.items() if at + self.answer_ttl <= now]:
            del self._answers[token]
        self._pending[pending.token] = pending

    async def take(self, token: str) -> PendingConfirmation | None:
        """The question for ``token``, for this caller alone; ``None`` when unknown, expired or taken."""
        pending = self._pending.pop(token, None)
        if pending is None or pending.expires <= time.time():
            return None
        self._answering.add(token)
        return pending

    async def settle(self, token: str, answer: Answer | None) -> None:
        """Record the answer (``None``: the attempt failed before IBKR decided; the question is gone)."""
        self._answering.discard(token)
        if answer is not None:
            self._answers[token] = (time.time(), answer)

    async def answer(self, token: str) -> Answer | None:
        hit = self._answers.get(token)
        return hit[1] if hit else None

    async def answering(self, token: str) -> bool:
        return token in self._answering

    async def wait_answer(self, token: str) -> Answer | None:
        """The answer of ``token`` once another caller has settled it (``None`` when none comes
        before the deadline, or nobody is answering)."""
        while await self.answering(token):
            left = budget.remaining(30.0)
            if left is not None and left <= 0:
                return None
            await asyncio.sleep(0.05)
        return await self.answer(token)


_TAKE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return raw
"""


class RedisConfirmationStore(ConfirmationStore):
    """The same in Redis, under ``prefix`` + the session name (every replica on the login)."""

    def __init__(self, redis: Any, session: str, ttl: float = 120.0, answer_ttl: float = 86_400.0,
                 prefix: str = "gateway:confirm:") -> None:
        super().__init__(ttl, answer_ttl)
        self.redis = redis
        self.base = f"{prefix}{session}:"
        self._take = redis.register_script(_TAKE)

    async def put(self, pending: PendingConfirmation) -> None:
        await self.redis.set(self.base + "q:" + pending.token, _dump(pending), px=int(self.ttl * 1000))

    async def take(self, token: str) -> PendingConfirmation | None:
        raw = await self._take(keys=[self.base + "q:" + token, self.base + "busy:" + token], args=[60_000])
        if not raw:
            return None
        pending = _load(raw)
        return pending if pending.expires > time.time() else None

    async def settle(self, token: str, answer: Answer | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if answer is not None:
                pipe.set(self.base + "a:" + token, _dump_answer(answer), px=int(self.answer_ttl * 1000))
            pipe.delete(self.base + "busy:" + token)
            await pipe.execute()

    async def answer(self, token: str) -> Answer | None:
        raw = await self.redis.get(self.base + "a:" + token)
        return _load_answer(raw) if raw else None

    async def answering(self, token: str) -> bool:
        return bool(await self.redis.exists(self.base + "busy:" + token))
