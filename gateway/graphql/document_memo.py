"""Values computed from a parsed document, kept per document object.

The parser cache (``schema.build_schema``) hands every request with the same text the same
``DocumentNode``; what the request pipeline derives from the document alone (validation errors, the
literals over a limit, the cost estimate) can then be kept per document *object*. graphql-core's AST
nodes are frozen dataclasses whose hash walks the whole tree on every call, so a cache keyed on the
document's value (functools.lru_cache, Strawberry's ``ValidationCache``) hashes the whole document on
every request: keyed on identity, a look-up costs a dict access.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["DocumentMemo"]

T = TypeVar("T")


class DocumentMemo(Generic[T]):
    """A bounded LRU of ``compute()`` results keyed on ``(the document object, extra)``.

    An entry holds its document, so the object's ``id`` is not reused while the entry lives: a
    different document never finds another's entry. ``maxsize`` entries at most (least recently used
    go first); a document that is not the parser cache's (a new text every time) just misses.
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[int, Hashable], tuple[Any, T]] = OrderedDict()

    def get(self, document: Any, extra: Hashable, compute: Callable[[], T]) -> T:
        """The value for ``document`` and ``extra``, computed (and kept) on a miss."""
        key = (id(document), extra)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is document:
            self._entries.move_to_end(key)
            return entry[1]
        value = compute()
        self._entries[key] = (document, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
