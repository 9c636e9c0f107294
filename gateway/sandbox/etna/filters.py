"""The venue's reading of ETNA's ``filter`` query parameter (positions and orders lists).

Grammar (keywords and field names case-insensitive)::

    filter  := clause ("and" clause)*
    clause  := FIELD op value
             | FIELD "between" value "and" value
             | FIELD "in" "(" value ("," value)* ")"
    op      := "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
    value   := NUMBER | 'string' ('' is a quote) | #date#

Fields: ``CreateDate`` / ``ModifyDate`` (``#…#`` dates), ``Quantity`` (numbers), ``Id`` /
``SecurityId`` (integers), ``Symbol`` (strings, compared without case, ``=`` / ``<>`` only) and,
for orders, ``Status`` (numeric status codes). Anything else, ``or`` included, is a
:class:`FilterError`, which the handlers answer with 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .wire import parse_wire_datetime

__all__ = ["FilterError", "Predicate", "parse_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]

_KINDS = {"createdate": "date", "modifydate": "date", "quantity": "number", "id": "int",
          "securityid": "int", "symbol": "string", "status": "int"}
_CANONICAL = {"createdate": "CreateDate", "modifydate": "ModifyDate", "quantity": "Quantity", "id": "Id",
              "securityid": "SecurityId", "symbol": "Symbol", "status": "Status"}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<date>\#[^#]*\#)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE | re.DOTALL)


class FilterError(ValueError):
    """The filter cannot be read."""


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterError(f"unexpected character at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group()))
    return out


class _Parser:
    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.fields = fields

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.take()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise FilterError(f"expected {text or kind}, got {tok.text!r}")
        return tok

    def parse(self) -> Predicate:
        clauses = [self.clause()]
        while self.keyword("and"):
            clauses.append(self.clause())
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.take().text!r}")
        return lambda rec: all(c(rec) for c in clauses)

    def value(self, kind: str) -> Any:
        tok = self.take()
        if kind == "date":
            if tok.kind != "date":
                raise FilterError("a date must be written #…#")
            try:
                return parse_wire_datetime(tok.text[1:-1])
            except ValueError:
                raise FilterError(f"bad date {tok.text!r}") from None
        if kind in ("number", "int"):
            if tok.kind != "number":
                raise FilterError(f"expected a number, got {tok.text!r}")
            try:
                value = Decimal(tok.text)
            except InvalidOperation:
                raise FilterError(f"bad number {tok.text!r}") from None
            if kind == "int" and value != value.to_integral_value():
                raise FilterError(f"expected an integer, got {tok.text!r}")
            return value
        if tok.kind != "string":
            raise FilterError(f"expected a quoted string, got {tok.text!r}")
        return tok.text[1:-1].replace("''", "'").upper()

    def clause(self) -> Predicate:
        name = self.expect("word").text.lower()
        if name not in self.fields:
            raise FilterError(f"unknown field {name!r}")
        kind, field = _KINDS[name], _CANONICAL[name]

        def get(rec: Mapping[str, Any]) -> Any:
            v = rec[field]
            return v.upper() if kind == "string" else v

        if self.keyword("between"):
            if kind == "string":
                raise FilterError("between needs numbers or dates")
            low = self.value(kind)
            if not self.keyword("and"):
                raise FilterError("between … and …")
            high = self.value(kind)
            return lambda rec: low <= get(rec) <= high
        if self.keyword("in"):
            self.expect("punct", "(")
            values = {self.value(kind)}
            while (tok := self.take()).text == ",":
                values.add(self.value(kind))
            if tok.text != ")":
                raise FilterError("in (…) not closed")
            return lambda rec: get(rec) in values
        op = self.expect("op").text
        value = self.value(kind)
        if kind == "string" and op not in ("=", "<>", "!="):
            raise FilterError("strings compare with = or <> only")
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        }
        fn = compare[op]
        return lambda rec: fn(get(rec), value)


def parse_filter(text: str | None, fields: frozenset[str]) -> Predicate:
    """The predicate of ``text`` over records keyed by canonical field names; ``fields`` are the
    lower-case field names this list allows. An empty filter accepts everything."""
    if text is None or not text.strip():
        return lambda rec: True
    return _Parser(text, fields).parse()


POSITION_FIELDS = frozenset({"createdate", "modifydate", "quantity", "id", "securityid", "symbol"})
ORDER_FIELDS = POSITION_FIELDS | {"status"}
