"""The documentation a user reads: README.md and docs/. Every link stays in the repository (and
lands on a file and heading that exist) or goes to public documentation; the schema guide names
every type and error code of the schema; every broker has its page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: hosts of public documentation the pages may link to
PUBLIC_DOCUMENTATION = frozenset({
    "docs.lemon.markets",                # lemon.markets Trading API
    "www.interactivebrokers.com",        # IBKR Client Portal Web API (IBKR Campus)
    "ant.aliceblueonline.com",           # Alice Blue ANT API
    "www.apollographql.com",             # Automatic Persisted Queries
    "opentelemetry.io",                  # OpenTelemetry
})

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp|file|mailto):[^>]+)>")
_BARE = re.compile(r"(?:https?|ftp|file)://[^\s)>\]]+")


def _prose(text: str) -> str:
    """The text a reader sees as prose: code blocks and code spans removed (they hold examples)."""
    return _CODE.sub("", _FENCE.sub("", text))


def _links(path: Path, text: str | None = None) -> list[str]:
    prose = _prose(path.read_text() if text is None else text)
    links = _LINK.findall(prose) + _AUTOLINK.findall(prose)
    rest = _AUTOLINK.sub("", _LINK.sub("", prose))
    return links + _BARE.findall(rest)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {_slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def _problems(path: Path, text: str | None = None) -> list[str]:
    problems = []
    for link in _links(path, text):
        parts = urlsplit(link)
        if parts.scheme:
            if parts.scheme not in ("http", "https") or parts.hostname not in PUBLIC_DOCUMENTATION:
                problems.append(f"{link}: leaves the repository for something that is not public documentation")
            continue
        if parts.path.startswith("/"):  # root-relative: the repository's root, as GitHub renders it
            target = (ROOT / parts.path.lstrip("/")).resolve()
        else:
            target = (path.parent / parts.path).resolve() if parts.path else path
        if not target.is_relative_to(ROOT):
            problems.append(f"{link}: points outside the repository")
        elif not target.exists():
            problems.append(f"{link}: no such file")
        elif parts.fragment and (target.suffix != ".md" or parts.fragment not in _anchors(target)):
            problems.append(f"{link}: no heading #{parts.fragment} in {target.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_links_stay_in_the_repository_or_go_to_public_documentation(path: Path) -> None:
    assert _links(path) or path.name != "README.md", "an index without links"
    assert _problems(path) == []


def test_the_link_checker_catches_what_it_should() -> None:
    page = ROOT / "docs" / "probe.md"  # read from the text below, never written
    problems = _problems(page, "[design](../../shared/design/ARCHITECTURE.md) [gone](missing.md) "
                               "[anchor](schema.md#no-such-heading) [fine](schema.md#paging) <https://example.com/x> "
                               "see http://intranet.local/wiki and `https://in-code.example` too\n"
                               "```\nhttps://in-a-block.example\n```\n")
    assert [p.split(":")[0] for p in problems] == [
        "../../shared/design/ARCHITECTURE.md", "missing.md", "schema.md#no-such-heading", "https", "http"], problems


def _sdl_names(kind: str) -> set[str]:
    sdl = (ROOT / "schema" / "schema.graphql").read_text()
    return set(re.findall(rf"^{kind} (\w+)", sdl, re.M))


def test_the_schema_guide_names_every_type_and_error_code() -> None:
    guide = (ROOT / "docs" / "schema.md").read_text()
    named = set(re.findall(r"`(\w+)`", guide))
    types = set().union(*(_sdl_names(kind) for kind in ("type", "input", "enum", "union", "interface", "scalar")))
    assert len(types) > 50 and types - named == set()
    sdl = (ROOT / "schema" / "schema.graphql").read_text()
    error_codes = set(re.findall(r"^  ([A-Z_]+)$", sdl.split("enum ErrorCode {", 1)[1].split("}", 1)[0], re.M))
    assert len(error_codes) == 12 and error_codes - named == set()

    from gateway.graphql import errors

    extension_codes = {code for _, code in errors._QUERY_CODES} | {"QUERY_TOO_COMPLEX", "BAD_USER_INPUT", "INTERNAL",
                                                                "BAD_REQUEST", "METHOD_NOT_ALLOWED", "CSRF_REFUSED"}
    persisted = set(re.findall(r'"(PERSISTED_QUERY_[A-Z_]+)"', (ROOT / "gateway" / "persisted.py").read_text()))
    assert len(persisted) == 4
    assert (extension_codes | persisted) - named == set()


def test_every_broker_has_its_page() -> None:
    from gateway.brokers import ADAPTERS

    for broker in ADAPTERS:
        page = (ROOT / "docs" / "brokers" / f"{broker}.md").read_text()
        for section in ("## What maps to what", "## Not supported", "## Pacing"):
            assert section in page, (broker, section)
