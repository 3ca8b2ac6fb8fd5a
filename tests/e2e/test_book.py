"""The built HTML book, served from a local folder with the network blocked, as a reader on a plane opens it.

Every page: loads with no console error and no request to another host; every plotly figure has its
traces drawn; every piece of math is typeset by the book's own MathJax; every mermaid diagram is an
SVG; every internal link points at a page (and an anchor) that exists.
"""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import BOOK

SKIP = {"genindex.html", "search.html", "py-modindex.html"}


def pages() -> list[str]:
    if not BOOK.is_dir():
        return []
    return sorted(str(p.relative_to(BOOK)) for p in BOOK.rglob("*.html")
                  if p.name not in SKIP and "_static" not in p.parts and "_sources" not in p.parts)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_the_book_was_built_with_its_pages():
    assert len(pages()) >= 10, f"{BOOK} has {len(pages())} pages"


def test_internal_links_resolve():
    parsed = {rel: _parse(BOOK / rel) for rel in pages()}
    broken = []
    for rel, links in parsed.items():
        for href in links.hrefs:
            url = urlparse(href)
            if url.scheme or url.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (BOOK / rel).parent / unquote(url.path) if url.path else BOOK / rel
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{rel}: {href}")
                continue
            if url.fragment and target.suffix == ".html":
                key = str(target.relative_to(BOOK.resolve()))
                ids = parsed[key].ids if key in parsed else _parse(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{rel}: {href} (no anchor)")
    assert not broken, f"{len(broken)} broken internal links: {broken[:20]}"


@pytest.mark.parametrize("rel", pages())
def test_page_reads_offline(rel, visit):
    seen = visit(rel)
    found = seen["check"]
    assert not seen["blocked"], f"requests to other hosts: {seen['blocked'][:5]}"
    assert not seen["errors"], seen["errors"][:5]
    assert not found["plots_without_traces"], found
    assert not found["math_not_typeset"], found
    assert not found["mermaid_not_svg"], found
    assert found["mathjax_scripts"] <= 1, found          # one MathJax for the page and its figures
