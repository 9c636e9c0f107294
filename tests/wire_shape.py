"""Compare a venue's answer with a broker's documented payload by keys and JSON types.

``assert_same_shape(documented, answer)`` walks both: every key of a documented object must be in
the answer's object with the same JSON type (``null`` on either side stands for "any": the
documents mix ``null`` and values for optional fields), and the answer may carry no key the
document lacks unless it is named in ``extra`` (a dotted path, ``"$.items[].outsideRTH"``, or a bare
key name). Lists compare each answer element with the documented first element (or with
``element``, a documented element chosen by the caller). Numbers are one type (JSON has no int /
float distinction), strings another: IBKR's ``strike`` ``"0"`` against ``0.0`` is a difference.
``optional`` names documented keys the answer may lack (present on some states only) and
``drift`` keys whose type the reference itself documents as varying (ETNA's ``ExecInst`` ``0`` or
``"AllOrNone"``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["assert_same_shape", "json_type"]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def _allowed(path: str, key: str, extra: frozenset[str]) -> bool:
    return key in extra or f"{path}.{key}" in extra


def _walk(doc: Any, got: Any, path: str, extra: frozenset[str], problems: list[str],
          optional: frozenset[str] = frozenset(), drift: frozenset[str] = frozenset()) -> None:
    kind_doc, kind_got = json_type(doc), json_type(got)
    if "null" in (kind_doc, kind_got) or path.rsplit(".", 1)[-1] in drift:
        return
    if kind_doc != kind_got:
        problems.append(f"{path}: documented {kind_doc}, venue {kind_got} ({got!r})")
        return
    if kind_doc == "object":
        for key, value in doc.items():
            if key not in got:
                if not _allowed(path, key, optional):
                    problems.append(f"{path}.{key}: documented, missing in the venue's answer")
            else:
                _walk(value, got[key], f"{path}.{key}", extra, problems, optional, drift)
        for key in got:
            if key not in doc and not _allowed(path, key, extra):
                problems.append(f"{path}.{key}: in the venue's answer, not in the documented payload")
    elif kind_doc == "array" and doc:
        for n, item in enumerate(got):
            _walk(doc[0], item, f"{path}[{n}]", extra, problems, optional, drift)


def assert_same_shape(documented: Any, answer: Any, *, extra: set[str] | frozenset[str] = frozenset(),
                      element: Any = None, optional: set[str] | frozenset[str] = frozenset(),
                      drift: set[str] | frozenset[str] = frozenset()) -> None:
    """Raise ``AssertionError`` listing every key / type difference (see the module docstring)."""
    problems: list[str] = []
    opt, dr = frozenset(optional), frozenset(drift)
    if element is not None:
        assert isinstance(answer, list) and answer, f"expected a non-empty array, got {answer!r}"
        for n, item in enumerate(answer):
            _walk(element, item, f"$[{n}]", frozenset(extra), problems, opt, dr)
    else:
        _walk(documented, answer, "$", frozenset(extra), problems, opt, dr)
    assert not problems, "venue answer differs from the documented shape:\n  " + "\n  ".join(problems)
