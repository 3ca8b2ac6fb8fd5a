"""The book's one bibliography, references.bib, and the citations of every page.

* every key cited with a ``{cite}`` role (``{cite:p}``, ``{cite:t}``, ``{footcite}``, ...) in book/ and labs/
  exists in references.bib (the build would fail on it too; this says which page, without a build);
* the file parses with pybtex (what sphinxcontrib-bibtex reads it with), has no duplicate keys, and every entry
  has a title, authors and a four-digit year; arXiv ids and DOIs are well-formed;
* the article's fabricated titles are cited nowhere as if they existed: not in references.bib, and on a page
  only in a passage that says they do not exist (chapter 10's table names each of them so).
"""
import json
import pathlib
import re

import pytest
from pybtex.database import parse_string

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIB = ROOT / "references.bib"
REFERENCES_CHAPTER = ROOT / "book" / "ch10-references.md"

# {cite}`a,b`, {cite:p}`a`, {cite:t}`a`, {footcite:t}`a`, {cite:p}`see <a>` (custom text)
CITE = re.compile(r"\{(?:foot)?cite(?::[a-z]+)?\}`([^`]*)`")

# Titles of the article's §7.3 and §10 that no paper has (seed-errata.md, section 4).
FABRICATED = (
    "A Comprehensive Guide to Learning Layer Representations",
    "AnVIL: A Data Platform",
    "Transformers: State-of-the-Art Model for Neural Machine Translation",
    "Scalable and Efficiently Trainable",
    "Deep Learning on Large-Scale Data with Parameter-Efficient Training Techniques",
)
# A passage that names a fabricated title must say, in the same passage, that it does not exist.
SAYS_FABRICATED = re.compile(r"no such (paper|title)|does not exist|do not exist|no paper has|fabricated|不存在",
                             re.IGNORECASE)

NEW_ARXIV = re.compile(r"^(?P<yy>\d{2})(?P<mm>\d{2})\.(?P<num>\d{4,5})(v\d+)?$")
OLD_ARXIV = re.compile(r"^[a-z]+(-[a-z]+)*(\.[A-Z]{2})?/\d{7}(v\d+)?$")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")


# ---------------------------------------------------------------- reading the pages and the file
def pages() -> list[pathlib.Path]:
    return sorted(p for d in ("book", "labs") for p in (ROOT / d).rglob("*")
                  if p.suffix in (".md", ".ipynb") and ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def page_text(path: pathlib.Path) -> str:
    """A page's prose: a markdown file, or the markdown cells of a notebook."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def cited_keys(text: str) -> list[str]:
    keys = []
    for inner in CITE.findall(text):
        target = re.search(r"<([^<>]+)>\s*$", inner)        # {cite:p}`custom text <key>`
        keys += [k.strip() for k in (target.group(1) if target else inner).split(",") if k.strip()]
    return keys


def passages(text: str) -> list[str]:
    """Paragraphs, list items and table rows: the unit a fabricated title must be marked in."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        out += re.split(r"\n(?=\s*(?:[*+-] |\d+\. |\|))", block)
    return out


def arxiv_id_ok(eprint: str) -> bool:
    """An arXiv identifier as arXiv issues them: YYMM.NNNN up to 2014, YYMM.NNNNN from 2015 (since 0704), or the old
    archive/YYMMNNN form; an optional version."""
    new = NEW_ARXIV.match(eprint)
    if new is None:
        return bool(OLD_ARXIV.match(eprint))
    yymm = int(new["yy"] + new["mm"])
    return 1 <= int(new["mm"]) <= 12 and yymm >= 704 and (len(new["num"]) == 4) == (yymm < 1501)


def raw_keys(source: str) -> list[str]:
    return re.findall(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", source, re.M)


@pytest.fixture(scope="module")
def bib():
    return parse_string(BIB.read_text(encoding="utf-8"), "bibtex")


# ---------------------------------------------------------------- the helpers can fail
def test_the_helpers_find_what_they_look_for():
    assert cited_keys("a {cite:p}`x,y` b {cite}`z` {cite:t}`see <w>` {footcite}`v`") == ["x", "y", "z", "w", "v"]
    assert cited_keys("no roles here, only `code`") == []
    assert not SAYS_FABRICATED.search("Vaswani et al., Transformers: State-of-the-Art Model for Neural Machine Translation")
    assert SAYS_FABRICATED.search("| 7.3.2 | \"Transformers …\" | **No such paper** |")
    assert len(passages("one\n\ntwo\n* three\n* four\n| a |\n| b |")) == 6
    assert raw_keys("@book{a,\n}\n @article{ b ,\n}") == ["a", "b"]
    good = ["1706.03762", "2005.14165v4", "1206.5538", "1412.6980", "cmp-lg/9505040", "math.GT/0309136"]
    wrong = ["1706.3762", "1206.55380", "1713.01234", "0612.1234", "arXiv:1706.03762", "1706.03762 ", ""]
    assert all(arxiv_id_ok(e) for e in good) and not any(arxiv_id_ok(e) for e in wrong)


# ---------------------------------------------------------------- the citations of the pages
def test_every_cited_key_is_in_references_bib(bib):
    known = {k.lower() for k in bib.entries}
    missing = {}
    for path in pages():
        for key in cited_keys(page_text(path)):
            if key.lower() not in known:
                missing.setdefault(str(path.relative_to(ROOT)), []).append(key)
    assert not missing, f"keys cited but not in references.bib: {missing}"


def test_chapters_9_and_10_cite_through_the_bibliography():
    """Not vacuous: the two chapters written with {cite} roles use many keys."""
    for name, least in (("ch09-faq.ipynb", 40), ("ch10-references.md", 80)):
        path = ROOT / "book" / name
        assert len(set(cited_keys(page_text(path)))) >= least, name


def test_the_bibliography_page_renders_references_bib():
    text = (ROOT / "book" / "bibliography.md").read_text(encoding="utf-8")
    assert re.search(r"^```\{bibliography\}", text, re.M), "book/bibliography.md needs a {bibliography} directive"


# ---------------------------------------------------------------- the file itself
def test_references_bib_has_no_duplicate_keys():
    keys = [k.lower() for k in raw_keys(BIB.read_text(encoding="utf-8"))]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    assert not twice, f"keys defined more than once: {twice}"
    assert len(keys) >= 150


def test_every_entry_has_a_title_authors_and_a_year(bib):
    bad = []
    for key, entry in bib.entries.items():
        title, year = entry.fields.get("title", "").strip(), entry.fields.get("year", "").strip()
        if not title or not entry.persons.get("author") or not re.fullmatch(r"(19|20)\d\d", year):
            bad.append(key)
    assert not bad, f"entries without a title, authors or a four-digit year: {bad}"


def test_arxiv_ids_and_dois_are_well_formed(bib):
    bad = []
    for key, entry in bib.entries.items():
        eprint = entry.fields.get("eprint")
        if eprint is not None:
            ok = arxiv_id_ok(eprint) and entry.fields.get("archivePrefix", "").lower() == "arxiv"
            journal = entry.fields.get("journal", "")
            if journal.startswith("arXiv preprint"):
                ok = ok and journal == f"arXiv preprint arXiv:{eprint}"
            if not ok:
                bad.append(f"{key}: eprint {eprint!r}")
        doi = entry.fields.get("doi")
        if doi is not None and not DOI.match(doi):
            bad.append(f"{key}: doi {doi!r}")
    assert not bad, bad


# ---------------------------------------------------------------- the article's fabricated titles
def test_no_entry_of_references_bib_has_a_fabricated_title(bib):
    titles = {key: re.sub(r"[{}]", "", e.fields.get("title", "")) for key, e in bib.entries.items()}
    bad = [(key, t) for key, t in titles.items() for f in FABRICATED if f.lower() in t.lower()]
    assert not bad, bad


def test_no_page_cites_a_fabricated_title_as_real():
    bad = []
    for path in pages():
        for passage in passages(page_text(path)):
            for title in FABRICATED:
                if title.lower() in passage.lower() and not SAYS_FABRICATED.search(passage):
                    bad.append(f"{path.relative_to(ROOT)}: {title!r} in {passage.strip()[:120]!r}")
    assert not bad, "fabricated titles cited without saying so:\n" + "\n".join(bad)


def test_chapter_10_marks_every_fabricated_title_in_its_table():
    rows = [line for line in REFERENCES_CHAPTER.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    for title in FABRICATED:
        marked = [r for r in rows if title.lower() in r.lower() and SAYS_FABRICATED.search(r)]
        assert marked, f"chapter 10's table does not name {title!r} as fabricated"
