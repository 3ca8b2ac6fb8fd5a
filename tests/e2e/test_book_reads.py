"""The built book read at a 1300 x 900 window, as a reader without a kernel sees it.

Each page of the smoke book, served offline, is measured once (``MEASURE``) and checked for what a reader
still hits after every figure draws and all math typesets:

* nothing in the page's main column reaches past its right edge outside a scroll container; no display
  equation and no figure is wider than the column; no table in a scroll container hides a column that the
  page's text names;
* printed sentences (a verdict, an exercise question) wrap instead of running past the right edge;
* mermaid diagrams draw their text at a readable size (at least 11.5 px on screen);
* every plotly figure names both axes (unless the subplot is a heatmap, an image or a table, or the axis
  shows no tick labels), its title fits the figure, and the text labels beside its points do not overlap;
* no control character (a backspace drawn as a box) in the page's text;
* a page whose outputs say a model is a random stand-in shows the visible note of
  :func:`labkit.runtime.weights_notice`, not only a printed line.
"""
from __future__ import annotations

import pytest

from conftest import BOOK
from probes import MEASURE
from test_book import pages


@pytest.fixture
def measured(visit):
    """The page's measurements, taken in the one visit that test_book.py's checks share."""
    return lambda rel: visit(rel)["measure"]


def _fail(found: dict, *keys: str) -> list[str]:
    return [f"{k}: {item}" for k in keys for item in found[k]]


@pytest.mark.parametrize("rel", pages())
def test_nothing_is_cut_at_the_right_edge(rel, measured):
    problems = _fail(measured(rel), "cut", "wide_math", "wide_figures", "hidden_columns")
    assert not problems, "\n".join(problems[:12])


@pytest.mark.parametrize("rel", pages())
def test_printed_sentences_wrap(rel, measured):
    problems = _fail(measured(rel), "unwrapped_sentences")
    assert not problems, "\n".join(problems[:6])


@pytest.mark.parametrize("rel", pages())
def test_diagrams_and_figures_read_without_a_kernel(rel, measured):
    problems = _fail(measured(rel), "small_mermaid", "untitled_axes", "cut_titles", "overlapping_labels",
                     "control_chars")
    assert not problems, "\n".join(problems[:12])


@pytest.mark.parametrize("rel", pages())
def test_a_random_stand_in_is_announced_on_the_page(rel, measured):
    problems = _fail(measured(rel), "stand_in_without_notice")
    assert not problems, "\n".join(problems)


def test_the_checks_find_what_they_look_for(browser, tmp_path):
    """The probe itself, on a page made to fail each check (so a green run means the book passed them)."""
    import functools
    import http.server
    import threading
    from pathlib import Path

    from conftest import Page, _Quiet
    (tmp_path / "bad.html").write_text("""<html><body><main><article class="bd-article" style="width:600px">
<p>The "secret" column is the one to read.</p>
<div style="width:900px">a box as wide as 900 px, cut</div>
<div style="overflow-x:auto"><table><thead><tr><th>visible</th><th style="padding-left:800px">secret</th></tr></thead>
<tbody><tr><td>1</td><td>2</td></tr></tbody></table></div>
<div class="cell_output"><div class="output stream"><pre style="overflow-x:auto">""" + "this is a printed sentence that goes on " * 8
    + """</pre></div></div>
<div class="cell_output">offline: gpt2 replaced by a tiny randomly initialised GPT2LMHeadModel</div>
<p>a backspace \b here</p>
</article></main></body></html>""")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    p = Page(browser)
    try:
        p.page.goto(f"http://127.0.0.1:{server.server_address[1]}/bad.html", wait_until="load")
        found = p.page.evaluate(MEASURE)
    finally:
        p.close()
        server.shutdown()
    assert any("900 px" in c for c in found["cut"]), found["cut"]
    assert any('"secret"' in c for c in found["hidden_columns"]), found["hidden_columns"]
    assert found["unwrapped_sentences"] and found["control_chars"] and found["stand_in_without_notice"], found
    assert Path(BOOK).name  # the book folder is configured (the page checks above read it)
